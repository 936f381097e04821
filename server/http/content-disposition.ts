// Content-Disposition carrying a user's original filename (RFC 6266 with RFC 8187 encoding).
// RFC 6266 §4.3: "when both "filename" and "filename*" are present ... recipients SHOULD pick
// "filename*"", and Appendix D advises sending "filename" first for user agents that predate it.

export type DispositionType = 'inline' | 'attachment';

const FALLBACK_NAME = 'download';
/** Most filesystems cap a name at 255 bytes; a longer one fails to save on the receiving side. */
const MAX_NAME_BYTES = 255;

// C0, DEL, C1, and the bidi controls that can disguise an extension ("photo\u202Egpj.exe").
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * RFC 8187 §3.2.1: attr-char = ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_"
 * / "`" / "|" / "~"; every other octet of the UTF-8 form is percent-encoded.
 */
const ATTR_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;

/**
 * RFC 6266 §4.3: "Recipients MUST NOT be able to write into any location other than one to which
 * they are specifically entitled", so only the last path segment is kept, cleaned of characters
 * no filesystem or terminal should see.
 */
function cleanFilename(filename: string): string {
  const lastSegment = filename.split(/[/\\]/).pop() ?? '';
  const cleaned = lastSegment.normalize('NFC').replace(UNSAFE_CHARS, '').trim();
  if (cleaned === '' || cleaned === '.' || cleaned === '..') return FALLBACK_NAME;
  return truncateUtf8(cleaned, MAX_NAME_BYTES);
}

/** Shortens to `maxBytes` of UTF-8 without splitting a code point, keeping a short extension. */
export function truncateUtf8(name: string, maxBytes: number): string {
  if (Buffer.byteLength(name) <= maxBytes) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
  let budget = maxBytes - Buffer.byteLength(ext);
  let stem = '';
  for (const codePoint of name.slice(0, name.length - ext.length)) {
    budget -= Buffer.byteLength(codePoint);
    if (budget < 0) break;
    stem += codePoint;
  }
  return stem + ext;
}

/** RFC 8187 ext-value with charset UTF-8 and no language: `UTF-8''caf%C3%A9.txt`. */
function encodeExtValue(value: string): string {
  let out = "UTF-8''";
  // Buffer.from turns a lone surrogate into U+FFFD, where encodeURIComponent would throw.
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The plain `filename` for old user agents: ASCII only. Accents are dropped to their base letter,
 * other non-ASCII becomes "_"; `"` and `\` are removed so the quoted-string needs no escapes, and
 * "%" is replaced because, per RFC 6266 Appendix D, "certain user agents incorrectly unescape" it.
 */
function asciiFallback(name: string): string {
  const ascii = name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/["\\]/g, '')
    .replace(/%/g, '_')
    .replace(/[^\x20-\x7e]+/gu, '_')
    .trim();
  return ascii === '' || ascii === '.' || ascii === '..' ? FALLBACK_NAME : ascii;
}

/** `attachment; filename="cafe.txt"; filename*=UTF-8''caf%C3%A9.txt` */
export function contentDisposition(filename: string, type: DispositionType): string {
  const name = cleanFilename(filename);
  return `${type}; filename="${asciiFallback(name)}"; filename*=${encodeExtValue(name)}`;
}
