// What the clients in the field do, sent raw where a client library would hide it:
// TUSKit (iOS), tus-android-client / tus-java-client, Uppy / tus-js-client in a browser.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../helpers/tus.ts';
import { ownTmpDir, uploadBytesHeld } from '../helpers/upload-bytes-held.ts';
import { until } from '../helpers/until.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
// On S3 the server gathers a PATCH's bytes in part files there (uploadBytesHeld).
ownTmpDir('sl-tus-clients-tmp-');

describe('client compatibility', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer({ env: { CORS_ORIGINS: 'https://app.example' } });
    auth = { Authorization: `Bearer ${await server.token('quinn')}` };
  });
  after(() => server.stop());

  test('TUSKit: Upload-Extension: creation on POST is accepted; HEAD carries Upload-Length', async () => {
    const res = await fetch(`${server.url}/v1/uploads`, {
      method: 'POST',
      headers: { ...TUS, ...auth, 'Upload-Length': '4', 'Upload-Extension': 'creation', 'Upload-Metadata': `filename ${Buffer.from('a.txt').toString('base64')}` },
    });
    assert.equal(res.status, 201);
    const url = res.headers.get('location')!;
    const head = await headUpload(url, auth);
    assert.equal(head.headers.get('upload-length'), '4');
    assert.equal(head.headers.get('upload-offset'), '0');
    assert.equal(head.headers.get('cache-control'), 'no-store');
  });

  test('OPTIONS advertises tus 1.0.0 and every extension clients probe for', async () => {
    const res = await fetch(`${server.url}/v1/uploads`, { method: 'OPTIONS' });
    assert.ok(res.status === 204 || res.status === 200);
    assert.equal(res.headers.get('tus-version'), '1.0.0');
    const extensions = res.headers.get('tus-extension')!.split(',').map((s) => s.trim());
    for (const ext of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration']) assert.ok(extensions.includes(ext), ext);
    assert.ok(Number(res.headers.get('tus-max-size')) > 0);
  });

  test('tus-android-client: an unknown or finished upload answers 404, never 410', async () => {
    for (const method of ['HEAD', 'PATCH'] as const) {
      const res = await fetch(`${server.url}/v1/uploads/${'0'.repeat(32)}`, {
        method,
        headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        ...(method === 'PATCH' ? { body: 'x' } : {}),
      });
      assert.equal(res.status, 404, method);
    }
  });

  test('X-HTTP-Method-Override: DELETE through POST terminates the upload', async () => {
    const url = (await createUpload(server.url, auth, 10)).headers.get('location')!;
    const res = await fetch(url, { method: 'POST', headers: { ...TUS, ...auth, 'X-HTTP-Method-Override': 'DELETE' } });
    assert.equal(res.status, 204);
    assert.equal((await headUpload(url, auth)).status, 404);
  });

  test('browsers can read every error: Tus-Resumable and CORS on 409, 413 and 460', async () => {
    const origin = { Origin: 'https://app.example' };
    const url = (await createUpload(server.url, { ...auth, ...origin }, 10, { sha256: '0'.repeat(64) })).headers.get('location')!;
    const conflict = await patchUpload(url, { ...auth, ...origin }, 3, Buffer.from('x'));
    const tooBig = await patchUpload(url, { ...auth, ...origin }, 0, Buffer.alloc(11));
    const mismatch = await patchUpload(url, { ...auth, ...origin }, 0, Buffer.alloc(10));
    for (const [res, status] of [[conflict, 409], [tooBig, 413], [mismatch, 460]] as const) {
      assert.equal(res.status, status);
      assert.equal(res.headers.get('tus-resumable'), '1.0.0', String(status));
      assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example', String(status));
      assert.equal(res.headers.get('content-type'), 'application/problem+json', String(status));
    }
  });

  test('a client that reports a wrong Upload-Offset gets 409 and corrupts nothing', async () => {
    const data = randomBytes(3000);
    const url = (await createUpload(server.url, auth, data.length, { filename: 'w.bin' })).headers.get('location')!;
    assert.equal((await patchUpload(url, auth, 0, data.subarray(0, 1000))).status, 204);
    for (const wrong of [0, 500, 999, 1001, 2000]) {
      const res = await patchUpload(url, auth, wrong, randomBytes(1000));
      assert.equal(res.status, 409, `offset ${wrong}`);
      assert.equal((await res.json()).code, 'offset_mismatch');
    }
    const done = await patchUpload(url, auth, 1000, data.subarray(1000));
    assert.equal((await done.json()).sha256, sha256(data));
  });

  test('two clients PATCHing one upload at once: the bytes stored are exactly what the server reports', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const url = (await createUpload(server.url, auth, data.length, { filename: 'race.bin' })).headers.get('location')!;
    const id = url.split('/').pop()!;
    // The first client streams slowly; the second arrives while it holds the upload's lock.
    const slow = new Promise<number>((resolve) => {
      const req = http.request(url, { method: 'PATCH', headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(data.length) } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', () => resolve(-1));
      req.write(data.subarray(0, 1024 * 1024));
      setTimeout(() => req.write(data.subarray(1024 * 1024, 2 * 1024 * 1024)), 300);
    });
    await until('the first client to be storing', () => uploadBytesHeld(server, url) > 0);
    const second = await patchUpload(url, auth, 0, data);
    const first = await Promise.race([slow, new Promise<number>((r) => setTimeout(() => r(0), 10_000))]);
    // tus hands the lock to the newer request (the older connection is usually a dead one); whoever
    // loses gets a refusal, never a silent success, and the stored bytes match the reported offset.
    const statuses = [first, second.status];
    assert.ok(!(statuses.filter((s) => s === 200 || s === 204).length === 2), `both succeeded: ${statuses}`);
    const head = await headUpload(url, auth);
    if (head.status === 200) {
      const offset = Number(head.headers.get('upload-offset'));
      assert.ok((await server.uploadBytes(id))?.equals(data.subarray(0, offset)));
      const rest = await patchUpload(url, auth, offset, data.subarray(offset));
      assert.equal((await rest.json()).sha256, sha256(data));
    } else {
      // The second client finished the whole file.
      assert.equal(second.status, 200);
      assert.equal((await second.json()).sha256, sha256(data));
    }
  });
});
