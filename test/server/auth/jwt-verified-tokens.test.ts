// Verified user tokens remembered by the verifier (server/auth/jwt.ts): a remembered token is
// accepted only until its exp (then token_expired, as jose says); only successes are remembered,
// by the exact string, so a forged variant of a remembered token is still refused.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { exportJWK, type JWK } from 'jose';
import { createUserTokenSigner, createUserTokenVerifier } from '../../../server/auth/jwt.ts';
import { AppError } from '../../../server/errors.ts';

async function ownKey(): Promise<JWK> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...(await exportJWK(privateKey)), alg: 'RS256', kid: 'own-1' };
}

const code = (expected: string) => (error: unknown) => error instanceof AppError && error.code === expected;

test('a remembered token stops working at its exp: token_expired, as on first sight', async () => {
  let clock = Date.UTC(2030, 0, 1);
  const key = await ownKey();
  const sign = createUserTokenSigner(key, () => clock);
  const verify = createUserTokenVerifier({ ownKeys: [key], publicKeyPem: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined }, () => clock);
  const { token, expiresAt } = await sign('alice', 30);
  assert.equal(await verify(token), 'alice');
  clock += 10_000;
  assert.equal(await verify(token), 'alice', 'still valid');
  clock = expiresAt.getTime() - 1;
  assert.equal(await verify(token), 'alice', 'valid to the last millisecond');
  clock = expiresAt.getTime();
  await assert.rejects(verify(token), code('token_expired'));
  await assert.rejects(verify(token), code('token_expired'), 'and stays refused');
});

test('only the exact string verified is remembered: its signature or payload altered is refused', async () => {
  let clock = Date.UTC(2030, 0, 1);
  const key = await ownKey();
  const sign = createUserTokenSigner(key, () => clock);
  const { token } = await sign('alice', 3600);
  const verify = createUserTokenVerifier({ ownKeys: [key], publicKeyPem: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined }, () => clock);
  assert.equal(await verify(token), 'alice');
  // A token whose signature was tampered with is a different string: never taken from memory.
  const [header, payload, signature] = token.split('.');
  const tampered = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;
  await assert.rejects(verify(tampered), code('invalid_token'));
  const forged = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: 'bob' })).toString('base64url')}.${signature}`;
  await assert.rejects(verify(forged), code('invalid_token'), 'another subject under the remembered signature');
  assert.equal(await verify(token), 'alice', 'the token itself still works');
});
