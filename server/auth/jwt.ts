// User tokens (JWT) verified with jose against: the server's own keys (RS256 by default, ES256
// selectable; a key retired by a change of algorithm still verifies what it signed), an operator-supplied
// public key (AUTH_JWT_PUBLIC_KEY_BASE64) and/or an identity provider's JWKS (AUTH_JWKS_URL).
// Each key is bound to the algorithms of its own type, so `alg: none` and algorithm confusion
// (e.g. HS256 signed with a public key) are refused; `exp` is required.
//
// A token verified once is remembered, by its exact string, until its `exp` or for
// VERIFIED_KEEP_MS, whichever comes first: a client sends the same token with every request, and
// the signature check cost more CPU than the rest of authenticating a request (~0.1 ms for RS256,
// bench/README.md). Only successes are kept, so a token that fails fails every time; one that
// expires is verified again at once and answers token_expired as before. Keys change only with a
// restart, except an identity provider's (AUTH_JWKS_URL), whose removed key is thus trusted for at
// most VERIFIED_KEEP_MS more (jose keeps a fetched key set longer than that anyway).
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { AppError } from '../errors.ts';
import { isValidUserId } from '../user-id.ts';

export const OWN_ISSUER = 'stream-line-upload';
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface JwtOptions {
  /** The server's own keys, each bound to its own `alg`: the signing key and any retired ones. */
  ownKeys: JWK[];
  publicKeyPem: string | undefined;
  jwksUrl: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
}

export type VerifyUserToken = (token: string) => Promise<string>;

const VERIFIED_KEEP_MS = 60_000;
/** Tokens remembered at most (the oldest goes first): a bound on memory, ~1 KB each. */
const VERIFIED_MAX = 1000;

export function publicJwk(privateJwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = privateJwk;
  return pub;
}

export function createUserTokenVerifier(options: JwtOptions, now: () => number = Date.now): VerifyUserToken {
  type Verifier = { key: KeyObject | JWTVerifyGetKey; options: JWTVerifyOptions };
  // One verifier per own key, so a token is checked only with the algorithm of the key its kid names.
  const own = new Map<string, Verifier>(options.ownKeys.map((key) => [key.kid!, {
    key: createLocalJWKSet({ keys: [publicJwk(key)] }),
    options: { algorithms: [key.alg!], issuer: OWN_ISSUER, requiredClaims: ['exp', 'sub'] },
  }]));
  const external: Verifier[] = [];
  const externalClaims: JWTVerifyOptions = { requiredClaims: ['exp', 'sub'] };
  if (options.issuer) externalClaims.issuer = options.issuer;
  if (options.audience) externalClaims.audience = options.audience;
  if (options.publicKeyPem) {
    const key = createPublicKey(options.publicKeyPem);
    external.push({ key, options: { ...externalClaims, algorithms: algorithmsFor(key) } });
  }
  if (options.jwksUrl) {
    external.push({
      key: createRemoteJWKSet(new URL(options.jwksUrl), {
        timeoutDuration: 5000,
        cooldownDuration: 30_000,
        [customFetch]: fetchKeySet,
      }),
      options: { ...externalClaims, algorithms: ASYMMETRIC },
    });
  }

  const verified = new Map<string, { sub: string; until: number }>();
  const remember = (token: string, sub: string, exp: number, at: number) => {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
    verified.set(token, { sub, until: Math.min(exp * 1000, at + VERIFIED_KEEP_MS) });
  };

  return async (token) => {
    const at = now();
    const known = verified.get(token);
    if (known) {
      if (at < known.until) return known.sub;
      verified.delete(token);
    }
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new AppError('invalid_token', 'the token is not a well-formed JWT');
    }
    const ownVerifier = kid === undefined ? undefined : own.get(kid);
    const candidates = ownVerifier ? [ownVerifier] : external;
    if (candidates.length === 0) throw new AppError('invalid_token', 'the token is signed by an unknown key');
    let failure: unknown;
    for (const verifier of candidates) {
      try {
        const { payload } = await jwtVerify(token, verifier.key as JWTVerifyGetKey, { ...verifier.options, currentDate: new Date(at) });
        const sub = payload.sub;
        if (typeof sub !== 'string' || !isValidUserId(sub)) {
          throw new AppError('invalid_token', 'the token subject is not a valid user id');
        }
        remember(token, sub, payload.exp!, at);
        return sub;
      } catch (error) {
        failure = error;
      }
    }
    if (failure instanceof AppError) throw failure;
    if (failure instanceof joseErrors.JWTExpired) throw new AppError('token_expired', 'the token has expired');
    throw new AppError('invalid_token', 'the token could not be verified');
  };
}

/**
 * Fetches AUTH_JWKS_URL for jose. When the identity provider cannot be reached or answers with an
 * error, the token is not at fault: a 401 would make clients throw away a valid token and sign the
 * user out, so this answers 503 with Retry-After instead.
 */
const fetchKeySet: typeof fetch = async (input, init) => {
  const unavailable = (why: string) =>
    new AppError('unavailable', `the identity provider's key set ${why}`, { 'Retry-After': '30' });
  let response: Response;
  try {
    response = await fetch(input, init);
  } catch (error) {
    throw unavailable((error as Error).name === 'TimeoutError' ? 'did not arrive in time' : 'could not be fetched');
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw unavailable(`answered ${response.status}`);
  }
  return response;
};

function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      break;
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
  }
  throw new Error(`AUTH_JWT_PUBLIC_KEY_BASE64: unsupported key type ${key.asymmetricKeyType}`);
}

export type SignUserToken = (userId: string, lifetimeSeconds: number) => Promise<{ token: string; expiresAt: Date }>;

export function createUserTokenSigner(ownKey: JWK, now: () => number = Date.now): SignUserToken {
  const alg = ownKey.alg!;
  const keyPromise = importJWK(ownKey, alg);
  return async (userId, lifetimeSeconds) => {
    const issuedAt = Math.floor(now() / 1000);
    const expiresAt = issuedAt + lifetimeSeconds;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg, kid: ownKey.kid!, typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(OWN_ISSUER)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(await keyPromise);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  };
}
