// HTTP Range (RFC 9110 §14) for one stored file: parse the header into a typed value first, then
// resolve it against the file's size. Only single ranges are served; RFC 9110 §14.2: "A server MAY
// ignore the Range header field", so anything we do not serve (multiple ranges, other units,
// malformed values) resolves to the whole file with 200, never to an error.

/**
 * One parsed range-spec. A position or length too large for a safe integer is `Infinity`: it is
 * necessarily past the end of any file we can store, and keeping it distinct from a rounded number
 * means it is never silently served as some other position.
 */
export type ParsedRange =
  | { kind: 'bounded'; start: number; end: number }
  | { kind: 'open'; start: number }
  | { kind: 'suffix'; length: number };

export type ResolvedRange =
  | { kind: 'full' }
  /** `end` is inclusive, as in Content-Range. */
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const DIGITS = /^[0-9]+$/;
// RFC 9110 §5.6.3: OWS = *( SP / HTAB ).
const OWS = /^[ \t]+|[ \t]+$/g;

function toPosition(digits: string): number {
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : Number.POSITIVE_INFINITY;
}

/** Decimal strings compared exactly, whatever their length (a > b). */
function greaterThan(a: string, b: string): boolean {
  const x = a.replace(/^0+(?=.)/, '');
  const y = b.replace(/^0+(?=.)/, '');
  return x.length !== y.length ? x.length > y.length : x > y;
}

function parseRangeSpec(spec: string): ParsedRange | null {
  const dash = spec.indexOf('-');
  if (dash === -1) return null;
  const first = spec.slice(0, dash);
  const last = spec.slice(dash + 1);
  if (first === '') {
    // suffix-range = "-" suffix-length
    return DIGITS.test(last) ? { kind: 'suffix', length: toPosition(last) } : null;
  }
  if (!DIGITS.test(first)) return null;
  if (last === '') return { kind: 'open', start: toPosition(first) };
  if (!DIGITS.test(last)) return null;
  // RFC 9110 §14.1.1: "A range-spec is invalid if ... the last-pos value is less than the first-pos".
  // Compared on the digits so that two huge values cannot round into a false order.
  if (greaterThan(first, last)) return null;
  return { kind: 'bounded', start: toPosition(first), end: toPosition(last) };
}

/**
 * Parses `Range: bytes=…` holding exactly one range-spec. Returns null for anything else: no
 * header, another unit, junk, or several ranges (which we choose not to serve).
 */
export function parseRange(header: string | null | undefined): ParsedRange | null {
  if (header == null) return null;
  const value = header.replace(OWS, '');
  const eq = value.indexOf('=');
  if (eq === -1) return null;
  // RFC 9110 §14.1: "Range unit names are case-insensitive".
  if (value.slice(0, eq).toLowerCase() !== 'bytes') return null;
  // RFC 9110 §5.6.1: a recipient accepts empty list elements, so "bytes=0-1," is one range.
  const specs = value
    .slice(eq + 1)
    .split(',')
    .map((s) => s.replace(OWS, ''))
    .filter((s) => s !== '');
  if (specs.length !== 1) return null;
  return parseRangeSpec(specs[0] as string);
}

/** Resolves the header against the file size (bytes). */
export function resolveRange(header: string | null | undefined, size: number): ResolvedRange {
  const range = parseRange(header);
  if (range === null) return { kind: 'full' };
  if (range.kind === 'suffix') {
    // RFC 9110 §14.1.1: a suffix-range is satisfiable when suffix-length is non-zero, and "if the
    // selected representation is shorter than the specified suffix-length, the entire
    // representation is used".
    if (range.length === 0) return { kind: 'unsatisfiable' };
    // An empty file has no byte range to name in Content-Range; send it whole (200, empty body).
    if (size === 0) return { kind: 'full' };
    return { kind: 'partial', start: Math.max(0, size - range.length), end: size - 1 };
  }
  // RFC 9110 §14.1.1: an int-range is satisfiable only if "the first-pos is less than the current
  // length of the selected representation"; a last-pos at or past the end means "the remainder".
  if (range.start >= size) return { kind: 'unsatisfiable' };
  const end = range.kind === 'bounded' ? Math.min(range.end, size - 1) : size - 1;
  return { kind: 'partial', start: range.start, end };
}

/**
 * The Content-Range value for a 206 or a 416 (RFC 9110 §14.4: `bytes 0-99/1234`, and for 416
 * "an unsatisfied-range value": `bytes *\/1234`). Null for a full response, which has none.
 */
export function contentRange(range: ResolvedRange, size: number): string | null {
  if (range.kind === 'partial') return `bytes ${range.start}-${range.end}/${size}`;
  if (range.kind === 'unsatisfiable') return `bytes */${size}`;
  return null;
}
