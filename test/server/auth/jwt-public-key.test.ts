// An operator's own RS256 key (AUTH_JWT_PUBLIC_KEY_BASE64): its tokens work beside the server's,
// and every token that key did not sign, or signed without what the server requires, is refused.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload } from '../../helpers/tus.ts';
import { b64url, inAnHour, signed } from './forge.ts';

describe('auth: AUTH_JWT_PUBLIC_KEY_BASE64 with an RS256 key', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { AUTH_JWT_PUBLIC_KEY_BASE64: Buffer.from(publicPem).toString('base64') } });
  });
  after(() => server.stop());

  const usage = (token: string) => fetch(`${server.url}/v1/usage`, { headers: { Authorization: `Bearer ${token}` } });

  test('an RS256 token from that key works for the files API and tus', async () => {
    const token = await signed(privateKey, { alg: 'RS256' }, { sub: 'erin', exp: inAnHour() });
    assert.equal((await usage(token)).status, 200);
    const withKid = await signed(privateKey, { alg: 'RS256', kid: 'operator-key' }, { sub: 'erin', exp: inAnHour() });
    const created = await createUpload(server.url, { Authorization: `Bearer ${withKid}` }, 4, { filename: 'e.txt' });
    assert.equal(created.status, 201);
    assert.equal((await server.services.repo.getUpload(created.headers.get('location')!.split('/').pop()!))!.user_id, 'erin');
    // The server's own tokens keep working next to it.
    assert.equal((await usage(await server.token('erin'))).status, 200);
  });

  test('RS256 tokens with a swapped alg, another key, no exp or expired are refused', async () => {
    const good = await signed(privateKey, { alg: 'RS256' }, { sub: 'erin', exp: inAnHour() });
    const [, payload, signature] = good.split('.');
    const swapped = (alg: string) => `${b64url({ alg, typ: 'JWT' })}.${payload}.${signature}`;
    const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const enc = new TextEncoder();
    const cases: Array<[string, string, string]> = [
      ['header says RS512', swapped('RS512'), 'invalid_token'],
      ['header says PS256', swapped('PS256'), 'invalid_token'],
      ['header says HS256', swapped('HS256'), 'invalid_token'],
      ['header says none', swapped('none'), 'invalid_token'],
      ['HS256 keyed with the PEM', await signed(enc.encode(publicPem), { alg: 'HS256' }, { sub: 'erin', exp: inAnHour() }), 'invalid_token'],
      ['HS256 keyed with the PEM body', await signed(enc.encode(publicPem.replace(/-----[^-]+-----|\s/g, '')), { alg: 'HS256' }, { sub: 'erin', exp: inAnHour() }), 'invalid_token'],
      ['another RSA key', await signed(otherRsa, { alg: 'RS256' }, { sub: 'erin', exp: inAnHour() }), 'invalid_token'],
      ['the server kid on an RS256 token', await signed(privateKey, { alg: 'RS256', kid: server.services.ownKey.kid! }, { sub: 'erin', exp: inAnHour() }), 'invalid_token'],
      ['no exp', await signed(privateKey, { alg: 'RS256' }, { sub: 'erin' }), 'invalid_token'],
      ['sub a/b', await signed(privateKey, { alg: 'RS256' }, { sub: 'a/b', exp: inAnHour() }), 'invalid_token'],
      ['expired', await signed(privateKey, { alg: 'RS256' }, { sub: 'erin', exp: Math.floor(Date.now() / 1000) - 60 }), 'token_expired'],
    ];
    for (const [what, token, code] of cases) await expectProblem(await usage(token), 401, code, what);
  });
});
