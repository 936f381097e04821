// Authentication and isolation (docs/api.md "Authentication"): every route refuses missing and bad
// credentials and other users' data; every supported way in (Bearer, cookie, service token,
// AUTH_JWT_PUBLIC_KEY_BASE64, AUTH_JWKS_URL, generate-token) works.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { expectProblem } from '../../helpers/problem.ts';
import { ROOT, startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, metadataHeader, patchUpload, TUS, tusUpload } from '../../helpers/tus.ts';

const OWN_ISSUER = 'stream-line-upload';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

type Headers = Record<string, string>;

interface Route {
  name: string;
  method: string;
  path: string;
  headers?: Headers;
  body?: Buffer;
}

/** Every authenticated route, aimed at `owner`'s upload and file. */
function everyRoute(uploadUrl: string, fileKey: string): Route[] {
  const uploadPath = new URL(uploadUrl).pathname;
  return [
    { name: 'tus POST', method: 'POST', path: '/v1/uploads', headers: { ...TUS, 'Upload-Length': '10' } },
    { name: 'tus HEAD', method: 'HEAD', path: uploadPath, headers: { ...TUS } },
    {
      name: 'tus PATCH',
      method: 'PATCH',
      path: uploadPath,
      headers: { ...TUS, 'Upload-Offset': '4', 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.from('XX'),
    },
    { name: 'tus DELETE', method: 'DELETE', path: uploadPath, headers: { ...TUS } },
    { name: 'files list', method: 'GET', path: '/v1/files/all' },
    { name: 'file metadata', method: 'GET', path: `/v1/files/metadata/${fileKey}` },
    { name: 'file delete', method: 'DELETE', path: `/v1/files/${fileKey}` },
    { name: 'usage', method: 'GET', path: '/v1/usage' },
    { name: 'generate-token', method: 'POST', path: '/v1/files/generate-token?user_id=alice' },
    ...originalApi('init', { files: [{ name: 'x.bin', size: 10 }] }),
    ...originalApi('part', { uploadId: uploadPath.split('/').pop(), partNumber: 5, chunkBase64: 'WFg=' }),
    ...originalApi('complete', { uploadId: uploadPath.split('/').pop(), parts: [{ data: 'WFg=' }] }),
  ];
}

/** The original server's upload calls (routes/legacy-uploads.ts), as its clients send them. */
function originalApi(call: string, body: unknown): Route[] {
  return [{ name: `original ${call}`, method: 'POST', path: `/v1/files/${call}`, headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) }];
}

function send(base: string, route: Route, auth: Headers): Promise<Response> {
  return fetch(`${base}${route.path}`, { method: route.method, headers: { ...route.headers, ...auth }, body: route.body ? new Uint8Array(route.body) : null });
}

function publicHalf(key: JWK): JWK {
  const { kid: _k, alg: _a, use: _u, d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicOnly } = key;
  return publicOnly;
}

function unsignedToken(header: Record<string, unknown>, payload: JWTPayload): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

async function signed(key: Parameters<SignJWT['sign']>[0], header: { alg: string; kid?: string }, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ typ: 'JWT', ...header }).sign(key);
}

describe('auth: every route refuses what it must', () => {
  let server: TestServer;
  let alice: Headers;
  let bob: Headers;
  let uploadUrl: string;
  let fileKey: string;
  let fileBytes: Buffer;
  let routes: Route[];

  before(async () => {
    server = await startTestServer();
    alice = { Authorization: `Bearer ${await server.token('alice')}` };
    bob = { Authorization: `Bearer ${await server.token('bob')}` };
    // Alice owns one unfinished upload (4 of 10 bytes) and one finished file.
    const created = await createUpload(server.url, alice, 10, { filename: 'part.bin' });
    assert.equal(created.status, 201);
    uploadUrl = created.headers.get('location')!;
    assert.equal((await patchUpload(uploadUrl, alice, 0, Buffer.from('abcd'))).status, 204);
    fileBytes = randomBytes(2000);
    const { done } = tusUpload({ endpoint: server.url, headers: alice, data: fileBytes, metadata: { filename: 'secret.txt' } });
    fileKey = (await done).fileKey!;
    routes = everyRoute(uploadUrl, fileKey);
  });
  after(() => server.stop());

  /** Alice's upload, file and usage are exactly as `before` left them; nothing else was created. */
  async function aliceUntouched(): Promise<void> {
    const head = await headUpload(uploadUrl, alice);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), '4');
    const id = uploadUrl.split('/').pop()!;
    assert.equal(readFileSync(path.join(server.dataDir, 'uploads', id)).toString(), 'abcd');
    const meta = await fetch(`${server.url}/v1/files/metadata/${fileKey}`, { headers: alice });
    assert.equal(meta.status, 200);
    assert.ok(readFileSync(path.join(server.dataDir, fileKey)).equals(fileBytes));
    const usage = await (await fetch(`${server.url}/v1/usage`, { headers: alice })).json();
    assert.deepEqual({ used: usage.used_bytes, reserved: usage.reserved_bytes }, { used: 2000, reserved: 10 });
    const db = server.services.db;
    assert.equal((db.prepare('SELECT count(*) AS n FROM uploads').get() as { n: number }).n, 1, 'no upload was created');
    assert.equal((db.prepare('SELECT count(*) AS n FROM files').get() as { n: number }).n, 1, 'no file was created or removed');
  }

  async function refuseEverywhere(auth: Headers, code: string, what: string): Promise<void> {
    for (const route of routes) {
      await expectProblem(await send(server.url, route, auth), 401, code, `${what} / ${route.name}`, route.method);
    }
  }

  test('no credentials: 401 unauthenticated on every route', async () => {
    await refuseEverywhere({}, 'unauthenticated', 'no credentials');
    await aliceUntouched();
  });

  test("another user's upload or file: 404 not_found (never 403), and nothing changes", async () => {
    const uploadId = uploadUrl.split('/').pop()!;
    for (const route of routes.filter((r) => r.path.includes(uploadId) || r.path.includes(fileKey) || r.body?.toString().includes(uploadId))) {
      await expectProblem(await send(server.url, route, bob), 404, 'not_found', `bob / ${route.name}`, route.method);
    }
    // The key percent-encoded is the same file, and just as invisible.
    const encoded = encodeURIComponent(fileKey);
    await expectProblem(await fetch(`${server.url}/v1/files/metadata/${encoded}`, { headers: bob }), 404, 'not_found');
    await expectProblem(await fetch(`${server.url}/v1/files/${encoded}`, { method: 'DELETE', headers: bob }), 404, 'not_found');
    // The method override reaches the same check.
    const override = await fetch(uploadUrl, {
      method: 'POST',
      headers: { ...TUS, ...bob, 'X-HTTP-Method-Override': 'DELETE' },
    });
    await expectProblem(override, 404, 'not_found', 'override DELETE');
    // Bob's own views do not show Alice's data.
    const list = await (await fetch(`${server.url}/v1/files/all`, { headers: bob })).json();
    assert.deepEqual(list, { files: [], next_cursor: null });
    const usage = await (await fetch(`${server.url}/v1/usage`, { headers: bob })).json();
    assert.equal(usage.used_bytes + usage.reserved_bytes, 0);
    // Naming Alice explicitly is refused, not silently ignored.
    await expectProblem(await fetch(`${server.url}/v1/files/all?user_id=alice`, { headers: bob }), 403, 'forbidden');
    await expectProblem(await fetch(`${server.url}/v1/usage?user_id=alice`, { headers: bob }), 403, 'forbidden');
    await aliceUntouched();
  });

  test('bad tokens: alg none, unknown key, algorithm confusion, malformed, missing claims, bad subjects', async () => {
    const ownKey = server.services.ownKey;
    const kid = ownKey.kid!;
    assert.equal(ownKey.alg, 'RS256', 'the default algorithm of the own key');
    const ownPrivate = await importJWK(ownKey, 'RS256');
    const publicOnly = publicHalf(ownKey);
    const publicPem = createPublicKey({ key: publicOnly as import('node:crypto').JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const stranger = (await generateKeyPair('RS256')).privateKey;
    const otherType = (await generateKeyPair('ES256')).privateKey;
    const claims = (extra: JWTPayload = {}): JWTPayload => ({ sub: 'alice', iss: OWN_ISSUER, exp: inAnHour(), ...extra });
    const own = (payload: JWTPayload) => signed(ownPrivate, { alg: 'RS256', kid }, payload);
    const enc = new TextEncoder();

    const bad: Array<[string, string]> = [
      ['alg none with the server kid', unsignedToken({ alg: 'none', kid, typ: 'JWT' }, claims())],
      ['alg none without kid', unsignedToken({ alg: 'none', typ: 'JWT' }, claims())],
      ['alg NONE with a signature', unsignedToken({ alg: 'NONE', kid }, claims()) + 'c2ln'],
      ['unknown RS256 key with the server kid', await signed(stranger, { alg: 'RS256', kid }, claims())],
      ['unknown RS256 key without kid', await signed(stranger, { alg: 'RS256' }, claims())],
      ['ES256 with the server kid (an RSA key)', await signed(otherType, { alg: 'ES256', kid }, claims())],
      ['PS256 by the server key', await signed(await importJWK(ownKey, 'PS256'), { alg: 'PS256', kid }, claims())],
      ['HS256 keyed with the public PEM', await signed(enc.encode(publicPem), { alg: 'HS256', kid }, claims())],
      ['HS256 keyed with the public JWK', await signed(enc.encode(JSON.stringify(publicOnly)), { alg: 'HS256', kid }, claims())],
      ['HS256 keyed with the public PEM, no kid', await signed(enc.encode(publicPem), { alg: 'HS256' }, claims())],
      ['missing exp', await own({ sub: 'alice', iss: OWN_ISSUER })],
      ['wrong issuer', await own(claims({ iss: 'https://evil.example' }))],
      ['missing issuer', await own({ sub: 'alice', exp: inAnHour() })],
      ['not yet valid', await own(claims({ nbf: inAnHour() }))],
      ['sub ..', await own(claims({ sub: '..' }))],
      ['sub .', await own(claims({ sub: '.' }))],
      ['sub a/b', await own(claims({ sub: 'a/b' }))],
      ['sub of 129 chars', await own(claims({ sub: 'a'.repeat(129) }))],
      ['sub empty', await own(claims({ sub: '' }))],
      ['sub missing', await own({ iss: OWN_ISSUER, exp: inAnHour() })],
      ['malformed: one word', 'not-a-jwt'],
      ['malformed: three dots of nothing', 'a.b.c'],
      ['malformed: header not JSON', `${Buffer.from('{"alg":').toString('base64url')}.${b64url(claims())}.sig`],
      ['malformed: signature altered', (await own(claims())).slice(0, -4) + 'AAAA'],
      ['malformed: payload swapped', (await own(claims())).replace(/\.[^.]+\./, `.${b64url(claims({ sub: 'bob' }))}.`)],
    ];
    for (const [what, token] of bad) {
      await refuseEverywhere({ Authorization: `Bearer ${token}` }, 'invalid_token', what);
      await refuseEverywhere({ Cookie: `sl_token=${token}` }, 'invalid_token', `${what} (cookie)`);
    }
    for (const header of ['Basic YWxpY2U6cGFzcw==', 'Bearer', `Bearer ${await own(claims())} extra`]) {
      await refuseEverywhere({ Authorization: header }, 'invalid_token', `Authorization: ${header.slice(0, 20)}`);
    }
    await aliceUntouched();
  });

  test('an expired token: 401 token_expired', async () => {
    const expired = await server.token('alice', -60);
    await refuseEverywhere({ Authorization: `Bearer ${expired}` }, 'token_expired', 'expired');
    await aliceUntouched();
  });

  test('a wrong X-Service-Token: 401, even next to a valid user token', async () => {
    await refuseEverywhere({ 'X-Service-Token': 'not-the-service-token-at-all' }, 'invalid_token', 'wrong service token');
    await refuseEverywhere({ 'X-Service-Token': `${server.serviceToken}x` }, 'invalid_token', 'service token + x');
    await refuseEverywhere({ 'X-Service-Token': server.serviceToken.slice(0, -1) }, 'invalid_token', 'service token prefix');
    await refuseEverywhere({ ...alice, 'X-Service-Token': 'wrong-wrong-wrong-wrong' }, 'invalid_token', 'wrong service token + bearer');
    await aliceUntouched();
  });

  test('a user token calling generate-token: 403 forbidden', async () => {
    for (const userId of ['alice', 'bob']) {
      const res = await fetch(`${server.url}/v1/files/generate-token?user_id=${userId}`, { method: 'POST', headers: alice });
      await expectProblem(res, 403, 'forbidden');
    }
    await expectProblem(await fetch(`${server.url}/v1/files/generate-token`, { method: 'POST', headers: alice }), 403, 'forbidden');
  });

  test('the default cookie sl_token authenticates every kind of request', async () => {
    const cookie = { Cookie: `other=1; sl_token=${await server.token('alice')}` };
    const list = await (await fetch(`${server.url}/v1/files/all`, { headers: cookie })).json();
    assert.deepEqual(list.files.map((f: { key: string }) => f.key), [fileKey]);
    assert.equal((await fetch(`${server.url}/v1/files/metadata/${fileKey}`, { headers: cookie })).status, 200);
    assert.equal((await headUpload(uploadUrl, cookie)).headers.get('upload-offset'), '4');
    const created = await createUpload(server.url, cookie, 3, { filename: 'c.txt' });
    assert.equal(created.status, 201);
    const done = await patchUpload(created.headers.get('location')!, cookie, 0, Buffer.from('xyz'));
    assert.equal(done.status, 200);
    const record = await done.json();
    assert.equal(record.user_id, 'alice');
    // Leave Alice as she was for the other tests.
    assert.equal((await fetch(`${server.url}/v1/files/${record.key}`, { method: 'DELETE', headers: cookie })).status, 200);
    await aliceUntouched();
  });

  test('the service token acts for user_id: files API by query, tus creation by metadata', async () => {
    const service = { 'X-Service-Token': server.serviceToken };
    const list = await (await fetch(`${server.url}/v1/files/all?user_id=alice`, { headers: service })).json();
    assert.deepEqual(list.files.map((f: { key: string }) => f.key), [fileKey]);
    const meta = await (await fetch(`${server.url}/v1/files/metadata/${fileKey}`, { headers: service })).json();
    assert.equal(meta.user_id, 'alice');
    const usage = await (await fetch(`${server.url}/v1/usage?user_id=alice`, { headers: service })).json();
    assert.equal(usage.used_bytes, 2000);
    await expectProblem(await fetch(`${server.url}/v1/files/all`, { headers: service }), 400, 'invalid_user_id');

    // Creation for carol: the upload is hers, the service and carol may continue it, alice may not.
    const data = Buffer.from('made by a service for carol');
    const created = await createUpload(server.url, service, data.length, { filename: 'carol.txt', user_id: 'carol' });
    assert.equal(created.status, 201);
    const url = created.headers.get('location')!;
    assert.equal(server.services.repo.getUpload(url.split('/').pop()!)!.user_id, 'carol');
    const carol = { Authorization: `Bearer ${await server.token('carol')}` };
    const carolUsage = await (await fetch(`${server.url}/v1/usage`, { headers: carol })).json();
    assert.equal(carolUsage.reserved_bytes, data.length);
    assert.equal((await headUpload(url, service)).status, 200);
    assert.equal((await headUpload(url, carol)).status, 200);
    await expectProblem(await headUpload(url, alice), 404, 'not_found', 'alice on carol', 'HEAD');
    const finished = await patchUpload(url, carol, 0, data);
    assert.equal(finished.status, 200);
    const record = await finished.json();
    assert.equal(record.user_id, 'carol');
    assert.match(record.key, /^users\/carol\//);
    // The service may delete it; carol's quota is free again.
    const deleted = await fetch(`${server.url}/v1/files/${record.key}`, { method: 'DELETE', headers: service });
    // 200 with a body: the original server's clients check for 200.
    assert.equal(deleted.status, 200);
    assert.deepEqual(await deleted.json(), { deleted: true, key: record.key });
    const freed = await (await fetch(`${server.url}/v1/usage`, { headers: carol })).json();
    assert.deepEqual({ used: freed.used_bytes, reserved: freed.reserved_bytes }, { used: 0, reserved: 0 });
    await aliceUntouched();
  });

  test('generate-token mints a user token that works, and it verifies against /.well-known/jwks.json', async () => {
    const service = { 'X-Service-Token': server.serviceToken };
    const res = await fetch(`${server.url}/v1/files/generate-token?user_id=dave&expires_hours=2`, { method: 'POST', headers: service });
    assert.equal(res.status, 200);
    const minted = await res.json();
    assert.equal(minted.user_id, 'dave');
    const expiresIn = Date.parse(minted.expires_at) - Date.now();
    assert.ok(expiresIn > 7100_000 && expiresIn <= 7200_000, `expires in ${expiresIn} ms`);
    const dave = { Authorization: `Bearer ${minted.token}` };
    const data = randomBytes(5000);
    const { done } = tusUpload({ endpoint: server.url, headers: dave, data, chunkSize: 2000, metadata: { filename: 'dave.bin' } });
    const record = JSON.parse((await done).body);
    assert.equal(record.user_id, 'dave');
    assert.equal(record.sha256, sha256(data));

    // The published set holds public keys only; the minted token verifies against it.
    const jwksRes = await fetch(`${server.url}/.well-known/jwks.json`);
    assert.equal(jwksRes.status, 200);
    const jwks = (await jwksRes.json()) as { keys: JWK[] };
    assert.equal(jwks.keys.length, 1);
    for (const key of jwks.keys) {
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(key[secret as keyof JWK], undefined, `jwks must not publish ${secret}`);
    }
    assert.equal(jwks.keys[0]!.kid, server.services.ownKey.kid);
    // RS256 by default: what the original server's clients verify.
    assert.deepEqual([jwks.keys[0]!.kty, jwks.keys[0]!.alg, jwks.keys[0]!.use], ['RSA', 'RS256', 'sig']);
    const { payload, protectedHeader } = await jwtVerify(minted.token, createLocalJWKSet(jwks), { issuer: OWN_ISSUER });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(payload.sub, 'dave');
    assert.equal(protectedHeader.kid, jwks.keys[0]!.kid);
    // …and a token from some other key does not.
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const forged = await signed(stranger, { alg: 'ES256', kid: jwks.keys[0]!.kid! }, { sub: 'dave', exp: inAnHour() });
    await assert.rejects(jwtVerify(forged, createLocalJWKSet(jwks)));

    for (const bad of ['0', 'abc', '-1', '1.5', '100000']) {
      const r = await fetch(`${server.url}/v1/files/generate-token?user_id=dave&expires_hours=${bad}`, { method: 'POST', headers: service });
      await expectProblem(r, 400, 'invalid_parameter', `expires_hours=${bad}`);
    }
    for (const bad of ['..', 'a%2Fb', '']) {
      const r = await fetch(`${server.url}/v1/files/generate-token?user_id=${bad}`, { method: 'POST', headers: service });
      await expectProblem(r, 400, 'invalid_user_id', `user_id=${bad}`);
    }
  });
});

describe('auth: AUTH_COOKIE_NAME and service token rotation', () => {
  const tokA = 'tokA-0123456789abcdef-rotation';
  const tokB = 'tokB-0123456789abcdef-rotation';
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { AUTH_COOKIE_NAME: 'my_session', AUTH_SERVICE_TOKEN: `${tokA}, ${tokB}` } });
  });
  after(() => server.stop());

  test('the configured cookie works; sl_token is then just another cookie', async () => {
    const token = await server.token('alice');
    assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { Cookie: `my_session=${token}` } })).status, 200);
    const created = await createUpload(server.url, { Cookie: `my_session=${token}` }, 1, {});
    assert.equal(created.status, 201);
    await expectProblem(await fetch(`${server.url}/v1/usage`, { headers: { Cookie: `sl_token=${token}` } }), 401, 'unauthenticated');
  });

  test('both rotated service tokens work; anything else is refused', async () => {
    for (const token of [tokA, tokB]) {
      const res = await fetch(`${server.url}/v1/usage?user_id=zoe`, { headers: { 'X-Service-Token': token } });
      assert.equal(res.status, 200, token);
      const minted = await fetch(`${server.url}/v1/files/generate-token?user_id=zoe`, { method: 'POST', headers: { 'X-Service-Token': token } });
      assert.equal(minted.status, 200);
    }
    for (const token of [`${tokA},${tokB}`, `${tokA}, ${tokB}`, tokA.slice(0, -1), tokB.toUpperCase(), 'test-service-token-0123456789abcdef']) {
      const res = await fetch(`${server.url}/v1/usage?user_id=zoe`, { headers: { 'X-Service-Token': token } });
      await expectProblem(res, 401, 'invalid_token', token);
    }
  });
});

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
    assert.equal(server.services.repo.getUpload(created.headers.get('location')!.split('/').pop()!)!.user_id, 'erin');
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
    assert.equal(server.services.repo.getUpload(created.headers.get('location')!.split('/').pop()!)!.user_id, 'frank');
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

describe("auth: the own key's algorithm (AUTH_JWT_ALGORITHM) and an upgrade from ES256", () => {
  const jwks = async (server: TestServer) => ((await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys;
  const works = async (server: TestServer, token: string) => (await fetch(`${server.url}/v1/usage`, { headers: { Authorization: `Bearer ${token}` } })).status;
  const stored = (server: TestServer) => JSON.parse(readFileSync(path.join(server.dataDir, 'secrets.json'), 'utf8'));

  test('ES256 stays selectable: the key, the JWKS and the tokens are ES256', async () => {
    const server = await startTestServer({ env: { AUTH_JWT_ALGORITHM: 'ES256' } });
    try {
      const keys = await jwks(server);
      assert.deepEqual(keys.map((k) => [k.kty, k.alg, k.crv]), [['EC', 'ES256', 'P-256']]);
      const token = await server.token('frank');
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'ES256');
      assert.equal(await works(server, token), 200);
    } finally {
      await server.stop();
    }
  });

  test('an install whose secrets hold an ES256 key: RS256 signs from then on, its ES256 tokens stay valid until the key ages out', async () => {
    const old = await startTestServer({ env: { AUTH_JWT_ALGORITHM: 'ES256' } });
    const esKid = old.services.ownKey.kid;
    const esToken = await old.token('frank', 400 * 86400);
    await old.stop({ keepData: true });

    const upgraded = await startTestServer({ dataDir: old.dataDir });
    const rsKid = upgraded.services.ownKey.kid;
    try {
      assert.deepEqual((await jwks(upgraded)).map((k) => [k.kid, k.alg]), [[rsKid, 'RS256'], [esKid, 'ES256']]);
      assert.equal(await works(upgraded, esToken), 200, 'a token of the retired ES256 key');
      const rsToken = await upgraded.token('frank');
      assert.equal(JSON.parse(Buffer.from(rsToken.split('.')[0]!, 'base64url').toString()).kid, rsKid);
      assert.equal(await works(upgraded, rsToken), 200);
      assert.equal(stored(upgraded).retired_user_token_keys.length, 1);
    } finally {
      await upgraded.stop({ keepData: true });
    }

    // A restart keeps both keys as they are.
    const again = await startTestServer({ dataDir: old.dataDir });
    try {
      assert.deepEqual((await jwks(again)).map((k) => k.kid), [rsKid, esKid]);
      assert.equal(await works(again, esToken), 200);
    } finally {
      await again.stop({ keepData: true });
    }

    // Past the longest lifetime of a token it can have signed, the retired key is dropped.
    const later = Date.now() + 367 * 86400_000;
    const aged = await startTestServer({ dataDir: old.dataDir, now: () => later });
    try {
      assert.deepEqual((await jwks(aged)).map((k) => k.kid), [rsKid]);
      await expectProblem(await fetch(`${aged.url}/v1/usage`, { headers: { Authorization: `Bearer ${esToken}` } }), 401, 'invalid_token');
      assert.equal(stored(aged).retired_user_token_keys, undefined);
    } finally {
      await aged.stop();
    }
  });

  test('npm run token signs with the stored key and never rotates it, whatever the environment says', async () => {
    const server = await startTestServer({ env: { AUTH_JWT_ALGORITHM: 'ES256' } });
    try {
      const before = stored(server);
      const cli = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/token-cli.ts'), 'frank', '2'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', DATA_DIR: server.dataDir },
        encoding: 'utf8',
      });
      assert.equal(cli.status, 0, cli.stderr);
      const token = cli.stdout.trim();
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'ES256');
      assert.equal(await works(server, token), 200);
      assert.deepEqual(stored(server).user_token_key, before.user_token_key);
      assert.equal(stored(server).retired_user_token_keys, undefined);
    } finally {
      await server.stop();
    }
  });

  test('any other AUTH_JWT_ALGORITHM stops start-up naming the variable', async () => {
    const { loadConfig, ConfigError } = await import('../../../server/config.ts');
    for (const bad of ['HS256', 'none', 'RS512']) {
      assert.throws(() => loadConfig({ AUTH_JWT_ALGORITHM: bad }), (error: unknown) => error instanceof ConfigError && /^AUTH_JWT_ALGORITHM: /.test(error.message));
    }
    assert.equal(loadConfig({}).jwtAlgorithm, 'RS256');
    assert.equal(loadConfig({ AUTH_JWT_ALGORITHM: 'es256' }).jwtAlgorithm, 'ES256');
  });
});
