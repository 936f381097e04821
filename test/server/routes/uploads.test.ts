// The core upload loop with the real tus-js-client against a real server on a free port.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { createUpload, headUpload, patchUpload, tusUpload } from '../../helpers/tus.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

for (const backend of backendsUnderTest()) {
  describe(`uploads with tus-js-client (${backend})`, () => {
    let server: TestServer;
    let auth: Record<string, string>;
    before(async () => {
      server = await startTestServer({ storage: backend });
      auth = { Authorization: `Bearer ${await server.token('alice')}` };
    });
    after(() => server.stop());

    test('a chunked upload is hashed, moved to users/<id>/yyyy/mm/dd/ and recorded', async () => {
      const data = randomBytes(3 * MiB + 123);
      const { done } = tusUpload({
        endpoint: server.url,
        headers: auth,
        data,
        chunkSize: MiB,
        metadata: { filename: 'holiday photo.JPG', filetype: 'image/jpeg', folder: 'main/pictures' },
      });
      const result = await done;
      assert.equal(result.status, 200);
      const record = JSON.parse(result.body);
      const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
      const uploadId = result.url.split('/').pop()!;
      assert.equal(record.key, `users/alice/${day}/${uploadId}.jpg`);
      assert.equal(result.fileKey, record.key);
      assert.deepEqual(
        { user_id: record.user_id, folder: record.folder, filename: record.filename, content_type: record.content_type, size: record.size, sha256: record.sha256 },
        { user_id: 'alice', folder: 'main/pictures', filename: 'holiday photo.JPG', content_type: 'image/jpeg', size: data.length, sha256: sha256(data) },
      );
      // In storage: exactly the bytes, at the key; nothing left of the upload.
      assert.ok((await server.readStored(record.key))!.equals(data));
      assert.equal(await server.hasUpload(uploadId), false);
      if (backend === 'file') assert.deepEqual(readdirSync(path.join(server.dataDir, 'uploads')), []);
      // Through the API.
      const meta = await fetch(`${server.url}/v1/files/metadata/${record.key}`, { headers: auth });
      assert.equal(meta.status, 200);
      assert.deepEqual(await meta.json(), record);
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal(usage.used_bytes, data.length);
      assert.equal(usage.reserved_bytes, 0);
      // The upload URL stays addressable as finished (a client whose last response was lost asks it).
      const head = await headUpload(result.url, auth);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), String(data.length));
      assert.equal(head.headers.get('x-file-key'), record.key);
      assert.equal(head.headers.get('tus-resumable'), '1.0.0');
    });

    test('creation-with-upload of a whole file answers 201 with Location and the record', async () => {
      const data = Buffer.from('small file in one request');
      const res = await fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(data.length), 'Content-Type': 'application/offset+octet-stream' },
        body: data,
      });
      assert.equal(res.status, 201);
      assert.match(res.headers.get('location')!, /\/v1\/uploads\/[0-9a-f]{32}$/);
      const record = await res.json();
      assert.equal(record.sha256, sha256(data));
      assert.equal(res.headers.get('x-file-key'), record.key);
    });

    test('an upload aborted half-way resumes from the offset the server reports', async () => {
      const data = randomBytes(4 * MiB);
      let aborted = false;
      const first = tusUpload({
        endpoint: server.url,
        headers: auth,
        data,
        chunkSize: MiB,
        metadata: { filename: 'resume.bin' },
        onProgress: (sent, _total, upload) => {
          if (!aborted && sent >= 2 * MiB) {
            aborted = true;
            void upload.abort();
          }
        },
      });
      first.done.catch(() => {});
      while (!aborted || !first.upload.url) await new Promise((r) => setTimeout(r, 20));
      // Asked at once, as a client resuming does: the cut PATCH's bytes are stored before it answers.
      const head = await headUpload(first.upload.url, auth);
      assert.equal(head.status, 200);
      const offset = Number(head.headers.get('upload-offset'));
      assert.ok(offset > 0 && offset < data.length, `offset ${offset} should be part-way`);
      assert.equal(head.headers.get('upload-length'), String(data.length));

      let firstProgress: number | undefined;
      const resumed = tusUpload({
        endpoint: server.url,
        headers: auth,
        data,
        chunkSize: MiB,
        uploadUrl: first.upload.url,
        onProgress: (sent) => (firstProgress ??= sent),
      });
      const result = await resumed.done;
      assert.ok(firstProgress! >= offset, 'the resumed upload started from the stored offset, not from 0');
      const record = JSON.parse(result.body);
      assert.equal(record.sha256, sha256(data));
      assert.ok((await server.readStored(record.key))!.equals(data));
    });

    test('a declared sha256 that differs: 460 checksum_mismatch, data discarded, reservation freed', async () => {
      const data = randomBytes(64 * 1024);
      const res = await createUpload(server.url, auth, data.length, { filename: 'bad.bin', sha256: sha256(Buffer.from('other')) });
      assert.equal(res.status, 201);
      const url = res.headers.get('location')!;
      const before = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal(before.reserved_bytes, data.length);
      const patch = await patchUpload(url, auth, 0, data);
      assert.equal(patch.status, 460);
      assert.equal(patch.headers.get('content-type'), 'application/problem+json');
      const problem = await patch.json();
      assert.equal(problem.code, 'checksum_mismatch');
      assert.equal(problem.status, 460);
      const id = url.split('/').pop()!;
      assert.equal(await server.hasUpload(id), false);
      const after = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal(after.reserved_bytes, before.reserved_bytes - data.length);
      assert.equal((await headUpload(url, auth)).status, 404);
    });

    test('a declared sha256 that matches (any case) is accepted', async () => {
      const data = randomBytes(10_000);
      const { done } = tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'ok.bin', sha256: sha256(data).toUpperCase() } });
      const record = JSON.parse((await done).body);
      assert.equal(record.sha256, sha256(data));
    });

    test('termination removes the bytes and the reservation', async () => {
      const res = await createUpload(server.url, auth, 1000, { filename: 'gone.txt' });
      const url = res.headers.get('location')!;
      await patchUpload(url, auth, 0, Buffer.alloc(400));
      const del = await fetch(url, { method: 'DELETE', headers: { ...auth, 'Tus-Resumable': '1.0.0' } });
      assert.equal(del.status, 204);
      const id = url.split('/').pop()!;
      assert.equal(await server.hasUpload(id), false);
      assert.equal(await server.services.repo.getUpload(id), undefined);
      assert.equal((await headUpload(url, auth)).status, 404);
    });

    test('a query string on an upload URL names the same upload: HEAD and PATCH answer as without it, for a user and a service', async () => {
      const data = randomBytes(900);
      const res = await createUpload(server.url, auth, data.length, { filename: 'query.bin' });
      const url = res.headers.get('location')!;
      const first = await patchUpload(`${url}?cache=1`, auth, 0, data.subarray(0, 300));
      assert.equal(first.status, 204);
      assert.equal(first.headers.get('upload-offset'), '300');
      const head = await headUpload(`${url}?cache=2#frag`, auth);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), '300');
      // A service names the user it acts for in the query.
      const service = { 'X-Service-Token': server.serviceToken };
      const serviceHead = await headUpload(`${url}?user_id=alice`, service);
      assert.equal(serviceHead.status, 200);
      assert.equal(serviceHead.headers.get('upload-offset'), '300');
      assert.equal((await patchUpload(`${url}?user_id=alice`, service, 300, data.subarray(300, 600))).status, 204);
      const last = await patchUpload(`${url}?x=%2F..%2F`, auth, 600, data.subarray(600));
      assert.equal(last.status, 200);
      assert.equal((await last.json()).sha256, sha256(data));
    });

    test('deferred length: bytes arrive, the length is declared last, the file is recorded', async () => {
      const res = await createUpload(server.url, auth, 'defer', { filename: 'stream.log' });
      assert.equal(res.status, 201);
      const url = res.headers.get('location')!;
      const a = randomBytes(1000);
      const b = randomBytes(500);
      const p1 = await patchUpload(url, auth, 0, a);
      assert.equal(p1.status, 204);
      const p2 = await patchUpload(url, auth, 1000, b, { 'Upload-Length': '1500' });
      assert.equal(p2.status, 200);
      const record = await p2.json();
      assert.equal(record.size, 1500);
      assert.equal(record.sha256, sha256(Buffer.concat([a, b])));
    });

    test('X-HTTP-Method-Override lets POST act as PATCH and HEAD (tus-java-client, tus-android-client)', async () => {
      const data = Buffer.from('override');
      const res = await createUpload(server.url, auth, data.length, { filename: 'o.txt' });
      const url = res.headers.get('location')!;
      const head = await fetch(url, { method: 'POST', headers: { ...auth, 'Tus-Resumable': '1.0.0', 'X-HTTP-Method-Override': 'HEAD' } });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), '0');
      const patch = await fetch(url, {
        method: 'POST',
        headers: { ...auth, 'Tus-Resumable': '1.0.0', 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: data,
      });
      assert.equal(patch.status, 200);
      assert.equal((await patch.json()).sha256, sha256(data));
    });
  });
}
