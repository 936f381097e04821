import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluatePreconditions,
  parseHttpDate,
  rangeAllowedByIfRange,
  strongEtag,
  type PreconditionResult,
} from '../../../server/http/conditional.ts';

const SHA = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
const validators = {
  etag: strongEtag({ size: 10, mtimeMs: 0, sha256: SHA }),
  // 500 ms past the second: HTTP dates cannot carry it, comparisons must not trip on it.
  lastModified: new Date('2024-03-01T12:00:00.500Z'),
};
const LM = 'Fri, 01 Mar 2024 12:00:00 GMT';
const BEFORE = 'Fri, 01 Mar 2024 11:59:59 GMT';
const AFTER = 'Fri, 01 Mar 2024 12:00:01 GMT';

test('strongEtag uses the sha256 when recorded', () => {
  assert.equal(strongEtag({ size: 10, mtimeMs: 1, sha256: SHA }), `"${SHA}"`);
});

test('strongEtag falls back to size and mtime, and each changes it', () => {
  const base = strongEtag({ size: 10, mtimeMs: 1000 });
  assert.match(base, /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.notEqual(strongEtag({ size: 11, mtimeMs: 1000 }), base);
  assert.notEqual(strongEtag({ size: 10, mtimeMs: 2000 }), base);
  assert.equal(strongEtag({ size: 10, mtimeMs: 1000, sha256: null }), base);
});

test('strongEtag refuses a sha256 that could break the header', () => {
  assert.throws(() => strongEtag({ size: 1, mtimeMs: 1, sha256: 'x"y' }), TypeError);
  assert.throws(() => strongEtag({ size: 1, mtimeMs: 1, sha256: SHA.toUpperCase() }), TypeError);
});

const preconditionCases: Array<[string, Record<string, string>, PreconditionResult]> = [
  ['no conditions', {}, 'proceed'],
  ['If-None-Match same tag', { 'if-none-match': `"${SHA}"` }, 'not-modified'],
  ['If-None-Match weak form of the tag (weak comparison)', { 'if-none-match': `W/"${SHA}"` }, 'not-modified'],
  ['If-None-Match other tag', { 'if-none-match': `"${OTHER}"` }, 'proceed'],
  ['If-None-Match list containing the tag', { 'if-none-match': `"${OTHER}", W/"${SHA}"` }, 'not-modified'],
  ['If-None-Match list with empty elements', { 'if-none-match': ` , "${OTHER}" ,, "${SHA}"` }, 'not-modified'],
  ['If-None-Match star', { 'if-none-match': '*' }, 'not-modified'],
  ['If-None-Match unquoted junk is ignored', { 'if-none-match': SHA }, 'proceed'],
  ['If-None-Match wins over If-Modified-Since', { 'if-none-match': `"${OTHER}"`, 'if-modified-since': AFTER }, 'proceed'],
  ['If-Modified-Since equal to Last-Modified', { 'if-modified-since': LM }, 'not-modified'],
  ['If-Modified-Since later', { 'if-modified-since': AFTER }, 'not-modified'],
  ['If-Modified-Since earlier', { 'if-modified-since': BEFORE }, 'proceed'],
  ['If-Modified-Since rfc850 form', { 'if-modified-since': 'Friday, 01-Mar-24 12:00:00 GMT' }, 'not-modified'],
  ['If-Modified-Since asctime form', { 'if-modified-since': 'Fri Mar  1 12:00:00 2024' }, 'not-modified'],
  ['If-Modified-Since invalid is ignored', { 'if-modified-since': 'yesterday' }, 'proceed'],
  ['If-Modified-Since ISO is not an HTTP-date', { 'if-modified-since': '2030-01-01' }, 'proceed'],
  ['If-Match same tag', { 'if-match': `"${SHA}"` }, 'proceed'],
  ['If-Match star', { 'if-match': '*' }, 'proceed'],
  ['If-Match other tag', { 'if-match': `"${OTHER}"` }, 'precondition-failed'],
  ['If-Match weak tag fails strong comparison', { 'if-match': `W/"${SHA}"` }, 'precondition-failed'],
  ['If-Unmodified-Since earlier', { 'if-unmodified-since': BEFORE }, 'precondition-failed'],
  ['If-Unmodified-Since equal', { 'if-unmodified-since': LM }, 'proceed'],
  ['If-Match decides over If-Unmodified-Since', { 'if-match': `"${SHA}"`, 'if-unmodified-since': BEFORE }, 'proceed'],
  ['412 before 304', { 'if-match': `"${OTHER}"`, 'if-none-match': `"${SHA}"` }, 'precondition-failed'],
];

for (const [name, headers, expected] of preconditionCases) {
  test(`evaluatePreconditions: ${name}`, () => {
    assert.equal(evaluatePreconditions(new Headers(headers), validators), expected);
  });
}

const ifRangeCases: Array<[string, string | null, boolean]> = [
  ['absent', null, true],
  ['same strong tag', `"${SHA}"`, true],
  ['same tag, weak: never matches', `W/"${SHA}"`, false],
  ['other tag', `"${OTHER}"`, false],
  ['a list is not one entity-tag', `"${SHA}", "${OTHER}"`, false],
  ['date equal to Last-Modified', LM, true],
  ['date one second later', AFTER, false],
  ['date one second earlier', BEFORE, false],
  ['junk', 'whenever', false],
];

for (const [name, value, expected] of ifRangeCases) {
  test(`rangeAllowedByIfRange: ${name}`, () => {
    const headers = new Headers(value === null ? {} : { 'if-range': value });
    assert.equal(rangeAllowedByIfRange(headers, validators), expected);
  });
}

const NOW = new Date('2024-06-01T00:00:00Z');
const dateCases: Array<[string, number | null]> = [
  ['Sun, 06 Nov 1994 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 37)],
  ['Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 37)],
  ['Sun Nov  6 08:49:37 1994', Date.UTC(1994, 10, 6, 8, 49, 37)],
  // More than 50 years ahead of 2024 means the past century.
  ['Monday, 01-Jan-80 00:00:00 GMT', Date.UTC(1980, 0, 1)],
  ['Friday, 01-Jan-60 00:00:00 GMT', Date.UTC(2060, 0, 1)],
  ['Sat, 31 Feb 2024 00:00:00 GMT', null],
  ['Sun, 06 Nov 1994 25:00:00 GMT', null],
  ['Sun, 06 Foo 1994 08:49:37 GMT', null],
  ['Sun, 06 Nov 1994 08:49:37 UTC', null],
  ['1700000000', null],
  ['', null],
];

for (const [value, expected] of dateCases) {
  test(`parseHttpDate: ${JSON.stringify(value)}`, () => {
    assert.equal(parseHttpDate(value, NOW), expected);
  });
}

test('a Last-Modified written with toUTCString reads back to the same second', () => {
  const header = validators.lastModified.toUTCString();
  assert.equal(header, LM);
  assert.equal(rangeAllowedByIfRange(new Headers({ 'if-range': header }), validators), true);
});
