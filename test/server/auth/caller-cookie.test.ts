// The session cookie: sl_token by default authenticates every kind of request, and AUTH_COOKIE_NAME
// renames it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, patchUpload } from '../../helpers/tus.ts';
import { aliceAndBob } from './alice-and-bob.ts';

describe('auth: the session cookie', () => {
  const fixture = aliceAndBob();

  test('the default cookie sl_token authenticates every kind of request', async () => {
    const { server, uploadUrl, fileKey, aliceUntouched } = fixture;
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
});

describe('auth: AUTH_COOKIE_NAME', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { AUTH_COOKIE_NAME: 'my_session' } });
  });
  after(() => server.stop());

  test('the configured cookie works; sl_token is then just another cookie', async () => {
    const token = await server.token('alice');
    assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { Cookie: `my_session=${token}` } })).status, 200);
    const created = await createUpload(server.url, { Cookie: `my_session=${token}` }, 1, {});
    assert.equal(created.status, 201);
    await expectProblem(await fetch(`${server.url}/v1/usage`, { headers: { Cookie: `sl_token=${token}` } }), 401, 'unauthenticated');
  });
});
