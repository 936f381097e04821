// generate-token and /.well-known/jwks.json (server/routes/tokens.ts): only a service may mint a
// user token; a minted token works for uploads and verifies against the published key set alone.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { createLocalJWKSet, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { expectProblem } from '../../helpers/problem.ts';
import { tusUpload } from '../../helpers/tus.ts';
import { aliceAndBob } from '../auth/alice-and-bob.ts';
import { inAnHour, OWN_ISSUER, signed } from '../auth/forge.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('generate-token', () => {
  const fixture = aliceAndBob();

  test('a user token calling generate-token: 403 forbidden', async () => {
    const { server, alice } = fixture;
    for (const userId of ['alice', 'bob']) {
      const res = await fetch(`${server.url}/v1/files/generate-token?user_id=${userId}`, { method: 'POST', headers: alice });
      await expectProblem(res, 403, 'forbidden');
    }
    await expectProblem(await fetch(`${server.url}/v1/files/generate-token`, { method: 'POST', headers: alice }), 403, 'forbidden');
  });

  test('generate-token mints a user token that works, and it verifies against /.well-known/jwks.json', async () => {
    const { server } = fixture;
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
