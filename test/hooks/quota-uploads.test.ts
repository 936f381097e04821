// Quota: stored + reserved + new must fit, decided in SQLite so parallel requests cannot overshoot.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { createUpload, patchUpload, tusUpload } from '../helpers/tus.ts';

for (const backend of backendsUnderTest()) {
  describe(`quota (${backend})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ storage: backend, env: { QUOTA_DEFAULT_BYTES: '60000' } });
    });
    after(() => server.stop());
    const usage = async (auth: Record<string, string>) => (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();

    test('12 parallel creations racing for a quota that fits 6: exactly 6 win', async () => {
      const auth = { Authorization: `Bearer ${await server.token('racer')}` };
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => createUpload(server.url, auth, 10_000, { filename: `r${i}` })));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 201, 201, 201, 201, 201, 413, 413, 413, 413, 413, 413]);
      for (const r of results.filter((x) => x.status === 413)) {
        assert.equal(r.headers.get('content-type'), 'application/problem+json');
        assert.equal((await r.json()).code, 'quota_exceeded');
      }
      assert.deepEqual(await usage(auth), { used_bytes: 0, reserved_bytes: 60_000, quota_bytes: 60_000 });
      // Terminating one frees its room for exactly one more.
      const url = results.find((r) => r.status === 201)!.headers.get('location')!;
      assert.equal((await fetch(url, { method: 'DELETE', headers: { ...auth, 'Tus-Resumable': '1.0.0' } })).status, 204);
      assert.equal((await createUpload(server.url, auth, 10_000)).status, 201);
      assert.equal((await createUpload(server.url, auth, 1)).status, 413);
    });

    test('stored files count: a finished upload keeps its bytes against the quota; deleting frees them', async () => {
      const auth = { Authorization: `Bearer ${await server.token('keeper')}` };
      const data = randomBytes(50_000);
      const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'k.bin' } }).done;
      assert.deepEqual(await usage(auth), { used_bytes: 50_000, reserved_bytes: 0, quota_bytes: 60_000 });
      assert.equal((await createUpload(server.url, auth, 10_001)).status, 413);
      assert.equal((await fetch(`${server.url}/v1/files/${fileKey}`, { method: 'DELETE', headers: auth })).status, 200);
      assert.equal((await createUpload(server.url, auth, 60_000)).status, 201);
    });

    test('a single upload larger than MAX_UPLOAD_BYTES is refused before anything is reserved', async () => {
      const auth = { Authorization: `Bearer ${await server.token('huge')}` };
      const res = await createUpload(server.url, auth, 60_001);
      assert.equal(res.status, 413);
      assert.equal((await res.json()).code, 'upload_too_large');
      assert.equal((await usage(auth)).reserved_bytes, 0);
    });

    test('deferred-length uploads are bounded while their bytes arrive', async () => {
      const auth = { Authorization: `Bearer ${await server.token('deferrer')}` };
      const a = (await createUpload(server.url, auth, 'defer')).headers.get('location')!;
      const b = (await createUpload(server.url, auth, 'defer')).headers.get('location')!;
      assert.equal((await patchUpload(a, auth, 0, randomBytes(40_000))).status, 204);
      assert.deepEqual(await usage(auth), { used_bytes: 0, reserved_bytes: 40_000, quota_bytes: 60_000 });
      // b may not take more than the 20 000 bytes left.
      const tooMuch = await patchUpload(b, auth, 0, randomBytes(20_001));
      assert.equal(tooMuch.status, 413);
      assert.equal((await tooMuch.json()).code, 'quota_exceeded');
      assert.equal((await patchUpload(b, auth, 0, randomBytes(20_000))).status, 204);
      // Declaring a length beyond the quota is refused; declaring the stored length finishes it.
      const declare = await patchUpload(a, auth, 40_000, Buffer.alloc(0), { 'Upload-Length': '40001' });
      assert.equal(declare.status, 413);
      assert.equal((await patchUpload(a, auth, 40_000, Buffer.alloc(0), { 'Upload-Length': '40000' })).status, 200);
      assert.deepEqual(await usage(auth), { used_bytes: 40_000, reserved_bytes: 20_000, quota_bytes: 60_000 });
    });

    test('a chunked (no Content-Length) PATCH of a deferred upload is cut at the room left', async () => {
      const auth = { Authorization: `Bearer ${await server.token('chunky')}` };
      const url = (await createUpload(server.url, auth, 'defer')).headers.get('location')!;
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(url, {
          method: 'PATCH',
          headers: { ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Transfer-Encoding': 'chunked' },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end(randomBytes(70_000));
      });
      assert.equal(status, 413);
      const head = await fetch(url, { method: 'HEAD', headers: { ...auth, 'Tus-Resumable': '1.0.0' } });
      assert.ok(Number(head.headers.get('upload-offset')) <= 60_000);
      assert.ok((await usage(auth)).reserved_bytes <= 60_000);
    });
  });
}
