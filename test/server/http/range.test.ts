import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentRange, parseRange, resolveRange, type ResolvedRange } from '../../../server/http/range.ts';

const full: ResolvedRange = { kind: 'full' };
const unsatisfiable: ResolvedRange = { kind: 'unsatisfiable' };
const partial = (start: number, end: number): ResolvedRange => ({ kind: 'partial', start, end });
const HUGE = '99999999999999999999999';

const cases: Array<[string, string | null | undefined, number, ResolvedRange]> = [
  ['no header', undefined, 100, full],
  ['null header', null, 100, full],
  ['empty header', '', 100, full],
  ['bounded', 'bytes=10-19', 100, partial(10, 19)],
  ['first byte', 'bytes=0-0', 100, partial(0, 0)],
  ['last byte', 'bytes=99-99', 100, partial(99, 99)],
  ['whole file as a range', 'bytes=0-99', 100, partial(0, 99)],
  ['end past the size is clamped', 'bytes=50-1000', 100, partial(50, 99)],
  ['open', 'bytes=10-', 100, partial(10, 99)],
  ['open at the last byte', 'bytes=99-', 100, partial(99, 99)],
  ['suffix', 'bytes=-10', 100, partial(90, 99)],
  ['suffix longer than the file is the whole file', 'bytes=-500', 100, partial(0, 99)],
  ['suffix of zero is unsatisfiable', 'bytes=-0', 100, unsatisfiable],
  ['start at the size', 'bytes=100-', 100, unsatisfiable],
  ['start beyond the end', 'bytes=200-300', 100, unsatisfiable],
  ['unit is case-insensitive', 'Bytes=1-2', 100, partial(1, 2)],
  ['whitespace around the value and spec', ' \tbytes= 1-2 \t', 100, partial(1, 2)],
  ['trailing empty list element', 'bytes=1-2,', 100, partial(1, 2)],
  ['leading zeros', 'bytes=007-008', 100, partial(7, 8)],
  ['multiple ranges are served whole', 'bytes=0-1,5-6', 100, full],
  ['multiple ranges with one bad', 'bytes=0-1,x', 100, full],
  ['other unit', 'items=0-1', 100, full],
  ['no unit', '0-1', 100, full],
  ['no equals sign', 'bytes 0-1', 100, full],
  ['empty set', 'bytes=', 100, full],
  ['lone dash', 'bytes=-', 100, full],
  ['last before first is invalid', 'bytes=5-4', 100, full],
  ['negative start', 'bytes=--5', 100, full],
  ['junk', 'bytes=abc-def', 100, full],
  ['decimal', 'bytes=1.5-2', 100, full],
  ['sign', 'bytes=+1-2', 100, full],
  ['space inside a number', 'bytes=1 0-20', 100, full],
  ['hex', 'bytes=0x10-0x20', 100, full],
  ['size 0, int-range', 'bytes=0-0', 0, unsatisfiable],
  ['size 0, open', 'bytes=0-', 0, unsatisfiable],
  ['size 0, suffix is served whole', 'bytes=-5', 0, full],
  ['size 0, no header', undefined, 0, full],
  ['huge start is past the end', `bytes=${HUGE}-`, 100, unsatisfiable],
  ['huge end is clamped', `bytes=5-${HUGE}`, 100, partial(5, 99)],
  ['huge suffix is the whole file', `bytes=-${HUGE}`, 100, partial(0, 99)],
  ['huge first above huge last is invalid', `bytes=${HUGE}1-${HUGE}`, 100, full],
  ['2^53+1 start does not round into range', 'bytes=9007199254740993-', 2 ** 40, unsatisfiable],
  ['large safe positions stay exact', 'bytes=4294967296-4294967300', 2 ** 33, partial(2 ** 32, 2 ** 32 + 4)],
];

for (const [name, header, size, expected] of cases) {
  test(`resolveRange: ${name}`, () => {
    assert.deepEqual(resolveRange(header, size), expected);
  });
}

test('parseRange keeps the three forms apart', () => {
  assert.deepEqual(parseRange('bytes=1-2'), { kind: 'bounded', start: 1, end: 2 });
  assert.deepEqual(parseRange('bytes=1-'), { kind: 'open', start: 1 });
  assert.deepEqual(parseRange('bytes=-2'), { kind: 'suffix', length: 2 });
  assert.deepEqual(parseRange(`bytes=-${HUGE}`), { kind: 'suffix', length: Number.POSITIVE_INFINITY });
});

const contentRangeCases: Array<[ResolvedRange, number, string | null]> = [
  [partial(0, 0), 100, 'bytes 0-0/100'],
  [partial(90, 99), 100, 'bytes 90-99/100'],
  [unsatisfiable, 100, 'bytes */100'],
  [unsatisfiable, 0, 'bytes */0'],
  [full, 100, null],
];

for (const [range, size, expected] of contentRangeCases) {
  test(`contentRange: ${JSON.stringify(range)} of ${size}`, () => {
    assert.equal(contentRange(range, size), expected);
  });
}
