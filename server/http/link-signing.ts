// HMAC-SHA256 for links that work without an account: signed GET links and batch ZIP tokens.
// Rotation: the first key signs, every key verifies, so a new key can be put first while links
// signed with the old one stay valid until they expire.
//
// The signature is checked before the expiry, so a link whose `exp` was edited answers 'invalid'
// (403), never 'expired' (410): only a link we really issued can be reported as expired, and a
// forger learns nothing about which values we would accept.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export type LinkDisposition = 'inline' | 'attachment';
export type VerifyResult = 'ok' | 'expired' | 'invalid';

export interface LinkClaims {
  key: string;
  /** Unix seconds; the link is refused from this second on. */
  exp: number;
  disposition: LinkDisposition;
}

export interface BatchPayload {
  userId: string;
  keys: string[];
  exp: number;
  name?: string;
}

export type BatchVerifyResult = { ok: true; payload: BatchPayload } | { ok: false; reason: 'expired' | 'invalid' };

/** Tokens travel in a URL path; Node's default header limit is 16 KiB and many proxies allow 8 KiB. */
export const MAX_BATCH_TOKEN_LENGTH = 8000;
const MAX_BATCH_JSON_BYTES = 256 * 1024;
const MAX_PATH_KEY_LENGTH = 4096;
const MAC_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const EXP_DIGITS = /^[0-9]{1,15}$/;

// Distinct prefixes keep a MAC made for one purpose from verifying for the other.
const LINK_DOMAIN = 'stream-line/get/v1';
const BATCH_DOMAIN = 'stream-line/batch/v1';

/** Each field is length-prefixed, so no choice of key (which may hold any character) can shift bytes into another field. */
function mac(signingKey: Buffer, domain: string, fields: string[]): Buffer {
  if (signingKey.length === 0) throw new TypeError('empty signing key');
  const hmac = createHmac('sha256', signingKey);
  for (const field of [domain, ...fields]) {
    const bytes = Buffer.from(field, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hmac.update(length).update(bytes);
  }
  return hmac.digest();
}

/** Strict base64url: the alphabet, no padding, and canonical (re-encodes to the same text). */
function decodeBase64url(text: string): Buffer | null {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

/** True when `sig` is the MAC under any of `keys`; each comparison is constant-time. */
function matchesAnyKey(sig: Buffer, keys: readonly Buffer[], domain: string, fields: string[]): boolean {
  if (sig.length !== MAC_BYTES) return false;
  return keys.some((k) => timingSafeEqual(sig, mac(k, domain, fields)));
}

function linkFields(claims: { key: string; exp: number | string; disposition: string }): string[] {
  return [claims.key, String(claims.exp), claims.disposition];
}

export function signLink(claims: LinkClaims, signingKey: Buffer): string {
  if (!Number.isSafeInteger(claims.exp) || claims.exp < 0) throw new TypeError('exp must be unix seconds');
  return mac(signingKey, LINK_DOMAIN, linkFields(claims)).toString('base64url');
}

/**
 * Verifies the query values of a signed link as received. `exp` may be the raw query string: only
 * plain decimal digits are accepted, so "1e3" or " 100" cannot stand in for a signed value.
 */
export function verifyLink(
  link: { key: string; exp: number | string; disposition: string; sig: string },
  keys: readonly Buffer[],
  nowSeconds: number,
): VerifyResult {
  const exp = typeof link.exp === 'number' ? String(link.exp) : link.exp;
  if (!EXP_DIGITS.test(exp)) return 'invalid';
  if (link.disposition !== 'inline' && link.disposition !== 'attachment') return 'invalid';
  const sig = decodeBase64url(link.sig);
  if (sig === null || !matchesAnyKey(sig, keys, LINK_DOMAIN, linkFields({ ...link, exp }))) return 'invalid';
  return nowSeconds >= Number(exp) ? 'expired' : 'ok';
}

/** Keys contain slashes and any other character; base64url keeps them one opaque path segment. */
export function encodeKeyForPath(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

/** The key, or null for anything that is not the canonical base64url of a non-empty UTF-8 string. */
export function decodeKeyFromPath(segment: string): string | null {
  if (segment.length === 0 || segment.length > MAX_PATH_KEY_LENGTH) return null;
  const bytes = decodeBase64url(segment);
  if (bytes === null) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * `<base64url(deflate(JSON))>.<base64url(HMAC)>`. Keys share long prefixes (users/<id>/<date>/),
 * so deflate fits several times more of them under MAX_BATCH_TOKEN_LENGTH. Throws a RangeError
 * when the token would be longer than that: the caller should refuse the request as too large.
 */
export function signBatchToken(payload: BatchPayload, signingKey: Buffer): string {
  if (!Number.isSafeInteger(payload.exp) || payload.exp < 0) throw new TypeError('exp must be unix seconds');
  const wire = { u: payload.userId, k: payload.keys, e: payload.exp, ...(payload.name === undefined ? {} : { n: payload.name }) };
  const body = deflateRawSync(Buffer.from(JSON.stringify(wire), 'utf8')).toString('base64url');
  const token = `${body}.${mac(signingKey, BATCH_DOMAIN, [body]).toString('base64url')}`;
  if (token.length > MAX_BATCH_TOKEN_LENGTH) throw new RangeError(`batch token of ${token.length} characters is too long`);
  return token;
}

/** Signature first, then (only for our own bytes) inflate with a cap, then shape, then expiry. */
export function verifyBatchToken(token: string, keys: readonly Buffer[], nowSeconds: number): BatchVerifyResult {
  const invalid = { ok: false, reason: 'invalid' } as const;
  if (token.length > MAX_BATCH_TOKEN_LENGTH) return invalid;
  const [body, sigText, extra] = token.split('.');
  if (body === undefined || sigText === undefined || extra !== undefined) return invalid;
  const sig = decodeBase64url(sigText);
  const compressed = decodeBase64url(body);
  if (sig === null || compressed === null || !matchesAnyKey(sig, keys, BATCH_DOMAIN, [body])) return invalid;
  const payload = parseBatchPayload(compressed);
  if (payload === null) return invalid;
  return nowSeconds >= payload.exp ? { ok: false, reason: 'expired' } : { ok: true, payload };
}

function parseBatchPayload(compressed: Buffer): BatchPayload | null {
  let wire: unknown;
  try {
    wire = JSON.parse(inflateRawSync(compressed, { maxOutputLength: MAX_BATCH_JSON_BYTES }).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof wire !== 'object' || wire === null) return null;
  const { u, k, e, n } = wire as Record<string, unknown>;
  if (typeof u !== 'string' || typeof e !== 'number' || !Number.isSafeInteger(e)) return null;
  if (!Array.isArray(k) || !k.every((key): key is string => typeof key === 'string')) return null;
  if (n !== undefined && typeof n !== 'string') return null;
  return { userId: u, keys: k, exp: e, ...(n === undefined ? {} : { name: n }) };
}
