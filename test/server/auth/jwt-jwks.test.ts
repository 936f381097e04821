// An identity provider's key set (AUTH_JWKS_URL) with issuer and audience: its tokens work, every
// token it did not issue for this server is refused, and a provider that is down is 503, not 401.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, metadataHeader, TUS } from '../../helpers/tus.ts';
import { inAnHour, OWN_ISSUER, signed, unsignedToken } from './forge.ts';

describe('auth: AUTH_JWKS_URL with issuer and audience', () => {
  const ISSUER = 'https://idp.example.test';
  const AUDIENCE = 'stream-line';
  let idp: http.Server;
  let jwksRequests = 0;
  let idpKey: CryptoKey;
  let server: TestServer;

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    idpKey = pair.privateKey;
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const keys = [
      { ...(await exportJWK(pair.publicKey)), kid: 'idp-es', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(rsa.publicKey)), kid: 'idp-rs', alg: 'RS256', use: 'sig' },
    ];
    idp = http.createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      jwksRequests++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    const { port } = idp.address() as AddressInfo;
    server = await startTestServer({
      env: { AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: AUDIENCE },
    });
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((resolve) => idp.close(() => resolve()));
  });

  const usage = (token: string) => fetch(`${server.url}/v1/usage`, { headers: { Authorization: `Bearer ${token}` } });
  const idpToken = (payload: JWTPayload, kid = 'idp-es') => signed(idpKey, { alg: 'ES256', kid }, payload);
  const good = (): JWTPayload => ({ sub: 'frank', iss: ISSUER, aud: AUDIENCE, exp: inAnHour() });

  test("a token from the identity provider's key set works", async () => {
    const res = await usage(await idpToken(good()));
    assert.equal(res.status, 200);
    assert.ok(jwksRequests >= 1, 'the key set was fetched from AUTH_JWKS_URL');
    const created = await createUpload(server.url, { Authorization: `Bearer ${await idpToken({ ...good(), aud: [AUDIENCE, 'other'] })}` }, 2, {});
    assert.equal(created.status, 201);
    assert.equal((await server.services.repo.getUpload(created.headers.get('location')!.split('/').pop()!))!.user_id, 'frank');
    // The server's own tokens keep their own issuer and still work.
    assert.equal((await usage(await server.token('frank'))).status, 200);
  });

  test('wrong or missing audience or issuer, an unknown kid, a foreign key, expiry: 401', async () => {
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const cases: Array<[string, string, string]> = [
      ['wrong aud', await idpToken({ ...good(), aud: 'someone-else' }), 'invalid_token'],
      ['missing aud', await idpToken({ sub: 'frank', iss: ISSUER, exp: inAnHour() }), 'invalid_token'],
      ['wrong iss', await idpToken({ ...good(), iss: 'https://evil.example' }), 'invalid_token'],
      ['missing iss', await idpToken({ sub: 'frank', aud: AUDIENCE, exp: inAnHour() }), 'invalid_token'],
      ['own issuer on an IdP token', await idpToken({ ...good(), iss: OWN_ISSUER }), 'invalid_token'],
      ['kid of the RSA key, signed ES256', await idpToken(good(), 'idp-rs'), 'invalid_token'],
      ['unknown kid', await idpToken(good(), 'nope'), 'invalid_token'],
      ['foreign key with the IdP kid', await signed(stranger, { alg: 'ES256', kid: 'idp-es' }, good()), 'invalid_token'],
      ['alg none with the IdP kid', unsignedToken({ alg: 'none', kid: 'idp-es' }, good()), 'invalid_token'],
      ['no exp', await idpToken({ sub: 'frank', iss: ISSUER, aud: AUDIENCE }), 'invalid_token'],
      ['sub ..', await idpToken({ ...good(), sub: '..' }), 'invalid_token'],
      ['expired', await idpToken({ ...good(), exp: Math.floor(Date.now() / 1000) - 60 }), 'token_expired'],
    ];
    for (const [what, token, code] of cases) await expectProblem(await usage(token), 401, code, what);
  });

  test('tus creation with an IdP token for someone else via metadata is forbidden', async () => {
    const res = await fetch(`${server.url}/v1/uploads`, {
      method: 'POST',
      headers: { ...TUS, Authorization: `Bearer ${await idpToken(good())}`, 'Upload-Length': '1', 'Upload-Metadata': metadataHeader({ user_id: 'alice' }) },
    });
    await expectProblem(res, 403, 'forbidden');
  });
});

describe('auth: an identity provider that is down', () => {
  let server: TestServer;
  let idp: http.Server;
  before(async () => {
    // Answers 500 to everything: the provider is there but broken.
    idp = http.createServer((_req, res) => res.writeHead(500).end('oops'));
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    const { port } = idp.address() as AddressInfo;
    server = await startTestServer({ env: { AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` } });
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((resolve) => idp.close(() => resolve()));
  });

  test("a token that only the provider's keys could verify: 503 unavailable, not 401 (the client must not drop its token)", async () => {
    const key = (await generateKeyPair('ES256')).privateKey;
    const token = await signed(key, { alg: 'ES256', kid: 'idp-1' }, { sub: 'gina', exp: inAnHour() });
    const res = await fetch(`${server.url}/v1/usage`, { headers: { Authorization: `Bearer ${token}` } });
    await expectProblem(res, 503, 'unavailable', 'JWKS answering 500');
    assert.ok(res.headers.get('retry-after'), 'Retry-After tells the client when to try again');
    // Closed for good: connection refused.
    await new Promise<void>((resolve) => idp.close(() => resolve()));
    const refused = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: `Bearer ${token}` } });
    await expectProblem(refused, 503, 'unavailable', 'JWKS refusing connections', 'POST');
    idp = http.createServer();
    // The server's own tokens do not depend on the provider.
    assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { Authorization: `Bearer ${await server.token('gina')}` } })).status, 200);
    // A malformed token is still the client's fault.
    await expectProblem(await fetch(`${server.url}/v1/usage`, { headers: { Authorization: 'Bearer x.y.z' } }), 401, 'invalid_token');
  });
});
