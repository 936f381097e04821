// The service token (X-Service-Token): a wrong one is refused on every route, even next to a valid
// user token; the right one acts for the user it names; both tokens of a rotation work.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, patchUpload } from '../../helpers/tus.ts';
import { aliceAndBob } from './alice-and-bob.ts';

describe('auth: the service token', () => {
  const fixture = aliceAndBob();

  test('a wrong X-Service-Token: 401, even next to a valid user token', async () => {
    const { server, alice, aliceUntouched, refuseEverywhere } = fixture;
    await refuseEverywhere({ 'X-Service-Token': 'not-the-service-token-at-all' }, 'invalid_token', 'wrong service token');
    await refuseEverywhere({ 'X-Service-Token': `${server.serviceToken}x` }, 'invalid_token', 'service token + x');
    await refuseEverywhere({ 'X-Service-Token': server.serviceToken.slice(0, -1) }, 'invalid_token', 'service token prefix');
    await refuseEverywhere({ ...alice, 'X-Service-Token': 'wrong-wrong-wrong-wrong' }, 'invalid_token', 'wrong service token + bearer');
    await aliceUntouched();
  });

  test('the service token acts for user_id: files API by query, tus creation by metadata', async () => {
    const { server, alice, fileKey, aliceUntouched } = fixture;
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
    assert.equal((await server.services.repo.getUpload(url.split('/').pop()!))!.user_id, 'carol');
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

  test("a service that names a user acts as that user: another user's files and uploads answer 404 and stay", async () => {
    const { server, alice, fileKey, aliceUntouched } = fixture;
    const service = { 'X-Service-Token': server.serviceToken };
    const asBob = (path: string, init: RequestInit = {}) =>
      fetch(`${server.url}${path}${path.includes('?') ? '&' : '?'}user_id=bob`, { ...init, headers: { ...service, ...init.headers } });
    await expectProblem(await asBob(`/v1/files/metadata/${fileKey}`), 404, 'not_found', 'metadata');
    await expectProblem(await asBob(`/v1/files/signed-url?key=${encodeURIComponent(fileKey)}`), 404, 'not_found', 'signed-url');
    await expectProblem(await asBob('/v1/files/batch-download', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ keys: [fileKey] }),
    }), 404, 'not_found', 'batch-download');
    await expectProblem(await asBob(`/v1/files/${fileKey}`, { method: 'DELETE' }), 404, 'not_found', 'delete');
    // Named as the owner, or not named at all, the service reaches the file.
    assert.equal((await fetch(`${server.url}/v1/files/metadata/${fileKey}?user_id=alice`, { headers: service })).status, 200);

    const created = await createUpload(server.url, alice, 10, { filename: 'scoped.txt' });
    const url = created.headers.get('location')!;
    await expectProblem(await headUpload(`${url}?user_id=bob`, service), 404, 'not_found', 'HEAD as bob', 'HEAD');
    await expectProblem(await patchUpload(`${url}?user_id=bob`, service, 0, Buffer.from('0123456789')), 404, 'not_found', 'PATCH as bob');
    await expectProblem(await fetch(`${url}?user_id=bob`, { method: 'DELETE', headers: { ...service, 'Tus-Resumable': '1.0.0' } }), 404, 'not_found', 'DELETE as bob');
    assert.equal((await headUpload(url, alice)).headers.get('upload-offset'), '0', 'the upload is untouched');
    assert.equal((await fetch(url, { method: 'DELETE', headers: { ...alice, 'Tus-Resumable': '1.0.0' } })).status, 204);

    // Two different names for the user the upload is for: refused, nothing created.
    const conflicting = await fetch(`${server.url}/v1/uploads?user_id=alice`, {
      method: 'POST',
      headers: { ...service, 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Metadata': `user_id ${Buffer.from('bob').toString('base64')}` },
    });
    await expectProblem(conflicting, 400, 'invalid_user_id', 'query and metadata disagree');
    await expectProblem(await fetch(`${server.url}/v1/files/metadata/${fileKey}?user_id=..%2Fx`, { headers: service }), 400, 'invalid_user_id', 'a bad user_id');
    // The query alone names the owner of a new upload too.
    const byQuery = await fetch(`${server.url}/v1/uploads?user_id=dora`, { method: 'POST', headers: { ...service, 'Tus-Resumable': '1.0.0', 'Upload-Length': '3' } });
    assert.equal(byQuery.status, 201);
    const dorasUpload = byQuery.headers.get('location')!;
    assert.equal((await server.services.repo.getUpload(dorasUpload.split('/').pop()!))!.user_id, 'dora');
    await fetch(dorasUpload, { method: 'DELETE', headers: { ...service, 'Tus-Resumable': '1.0.0' } });
    await aliceUntouched();
  });
});

describe('auth: service token rotation', () => {
  const tokA = 'tokA-0123456789abcdef-rotation';
  const tokB = 'tokB-0123456789abcdef-rotation';
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { AUTH_SERVICE_TOKEN: `${tokA}, ${tokB}` } });
  });
  after(() => server.stop());

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
