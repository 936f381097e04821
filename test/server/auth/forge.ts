// Tokens made by hand, as an attacker or an identity provider would make them: signed with any key
// and algorithm, or not signed at all.
import { SignJWT, type JWK, type JWTPayload } from 'jose';

/** The `iss` of the tokens the server signs itself. */
export const OWN_ISSUER = 'stream-line-upload';

export const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
export const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

export function publicHalf(key: JWK): JWK {
  const { kid: _k, alg: _a, use: _u, d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicOnly } = key;
  return publicOnly;
}

export function unsignedToken(header: Record<string, unknown>, payload: JWTPayload): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

export async function signed(key: Parameters<SignJWT['sign']>[0], header: { alg: string; kid?: string }, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ typ: 'JWT', ...header }).sign(key);
}
