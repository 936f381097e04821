// Validators and conditional requests (RFC 9110 §8.8, §13) for GET/HEAD of one stored file.
// Finished files never change under their key, so a content hash is a strong validator in the
// RFC's sense: "a strong validator might change for reasons other than a change to the
// representation data ... but it will always change when the data changes" (§8.8.1).

export interface Validators {
  /** The strong ETag as sent, quotes included (from `strongEtag`). */
  etag: string;
  lastModified: Date;
}

export type PreconditionResult = 'proceed' | 'not-modified' | 'precondition-failed';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * A strong ETag: the recorded sha256 when there is one (stable across restarts, moves between
 * disks and storage backends), else size and mtime, which suffices for write-once files.
 */
export function strongEtag(file: { size: number; mtimeMs: number; sha256?: string | null }): string {
  if (file.sha256 != null) {
    if (!SHA256_HEX.test(file.sha256)) throw new TypeError('sha256 must be 64 lowercase hex digits');
    return `"${file.sha256}"`;
  }
  return `"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
}

interface EntityTag {
  weak: boolean;
  opaque: string;
}

// RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag; weak = %s"W/"; opaque-tag = DQUOTE *etagc DQUOTE
const ENTITY_TAG = /^[ \t]*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|$)/;

/** `*`, a list of entity-tags, or null when the value does not parse (then the header is ignored). */
function parseEtagList(value: string): '*' | EntityTag[] | null {
  if (value.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  let rest = value;
  while (rest.trim() !== '') {
    const match = ENTITY_TAG.exec(rest);
    if (match === null) {
      // RFC 9110 §5.6.1: empty list elements are allowed ("a, , b").
      const empty = /^[ \t]*,/.exec(rest);
      if (empty === null) return null;
      rest = rest.slice(empty[0].length);
      continue;
    }
    tags.push({ weak: match[1] !== undefined, opaque: match[2] as string });
    rest = rest.slice(match[0].length);
  }
  return tags.length > 0 ? tags : null;
}

function parseEtag(value: string): EntityTag | null {
  const list = parseEtagList(value);
  return Array.isArray(list) && list.length === 1 ? (list[0] as EntityTag) : null;
}

/** RFC 9110 §8.8.3.2: "two entity tags are equivalent if both are not weak and their opaque-tags match character-by-character". */
function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** RFC 9110 §8.8.3.2: "two entity tags are equivalent if their opaque-tags match character-by-character, regardless of either or both being tagged as weak". */
function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const IMF_FIXDATE = /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Milliseconds since the epoch for an HTTP-date, or null. RFC 9110 §5.6.7: "Recipients of timestamp
 * values are encouraged to be robust ... but MUST accept all three HTTP-date formats"; and a
 * two-digit rfc850 year "that appears to be more than 50 years in the future" is in the past.
 */
export function parseHttpDate(value: string, now = new Date()): number | null {
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m) return fromParts(Number(m[3]), m[2], m[1], m[4], m[5], m[6]);
  if ((m = RFC850_DATE.exec(v))) {
    const thisYear = now.getUTCFullYear();
    const year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    return fromParts(year > thisYear + 50 ? year - 100 : year, m[2], m[1], m[4], m[5], m[6]);
  }
  if ((m = ASCTIME_DATE.exec(v))) return fromParts(Number(m[6]), m[1], m[2], m[3], m[4], m[5]);
  return null;
}

function fromParts(year: number, ...text: Array<string | undefined>): number | null {
  const [monthName = '', day, hour, minute, second] = text;
  const month = MONTHS.indexOf(monthName.toLowerCase());
  const [d, h, mi, s] = [day, hour, minute, second].map(Number) as [number, number, number, number];
  if (month === -1 || h > 23 || mi > 59 || s > 60) return null;
  // Date.UTC rolls "31 Feb" into March; refuse it rather than answer for another date.
  if (new Date(Date.UTC(year, month, d)).getUTCDate() !== d) return null;
  return Date.UTC(year, month, d, h, mi, s);
}

/** HTTP dates have one-second resolution, so Last-Modified is compared truncated to the second. */
function toHttpSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * RFC 9110 §13.2.2 order for GET/HEAD: If-Match, else If-Unmodified-Since (→ 412); then
 * If-None-Match, else If-Modified-Since (→ 304). If-Range is separate (`rangeAllowedByIfRange`).
 * A header whose value does not parse is ignored, as §13.1.3/§13.1.4 ask for dates.
 */
export function evaluatePreconditions(headers: Headers, validators: Validators): PreconditionResult {
  const current = parseEtag(validators.etag);
  if (current === null) throw new TypeError(`not an entity-tag: ${validators.etag}`);
  const lastModified = toHttpSeconds(validators.lastModified.getTime());

  const ifMatch = headers.get('if-match');
  if (ifMatch !== null) {
    const list = parseEtagList(ifMatch);
    // §13.1.1: "An origin server MUST use the strong comparison function when comparing entity tags for If-Match".
    if (list !== null && list !== '*' && !list.some((tag) => strongMatch(tag, current))) return 'precondition-failed';
  } else {
    const ius = headers.get('if-unmodified-since');
    const date = ius === null ? null : parseHttpDate(ius);
    if (date !== null && lastModified > toHttpSeconds(date)) return 'precondition-failed';
  }

  const ifNoneMatch = headers.get('if-none-match');
  if (ifNoneMatch !== null) {
    const list = parseEtagList(ifNoneMatch);
    // §13.1.2: "A recipient MUST use the weak comparison function when comparing entity tags for If-None-Match".
    if (list === '*' || (list !== null && list.some((tag) => weakMatch(tag, current)))) return 'not-modified';
    return 'proceed';
  }
  // §13.1.3: "A recipient MUST ignore If-Modified-Since if the request contains an If-None-Match header field".
  const ims = headers.get('if-modified-since');
  const date = ims === null ? null : parseHttpDate(ims);
  if (date !== null && lastModified <= toHttpSeconds(date)) return 'not-modified';
  return 'proceed';
}

/**
 * RFC 9110 §13.1.5: with If-Range the Range is honoured only if the validator matches: an
 * entity-tag by strong comparison, or an HTTP-date that "exactly matches the Last-Modified field
 * value". Otherwise "the recipient SHOULD ignore the Range header field" and send the whole file.
 */
export function rangeAllowedByIfRange(headers: Headers, validators: Validators): boolean {
  const ifRange = headers.get('if-range');
  if (ifRange === null) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    const tag = parseEtag(value);
    const current = parseEtag(validators.etag);
    return tag !== null && current !== null && strongMatch(tag, current);
  }
  const date = parseHttpDate(value);
  return date !== null && toHttpSeconds(date) === toHttpSeconds(validators.lastModified.getTime());
}
