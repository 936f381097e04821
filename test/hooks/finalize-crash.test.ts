// Crashes: a server killed with SIGKILL between and in the middle of PATCHes and restarted on the same
// DATA_DIR (on each storage backend), and a finish whose transaction never ran after its bytes
// reached their key. The repair of the other states a crash leaves on local disk is
// finalize-crash-disk.test.ts; the S3 states are fabricated in test/server/storage-contract.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { recordQuery, recordRows } from '../helpers/records.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { openTestStorage, readStored, spawnServer, startTestServer, tempDir, SERVICE_TOKEN } from '../helpers/server.ts';
import { headUpload, metadataHeader, patchUpload, tusUpload } from '../helpers/tus.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;
const service = { 'X-Service-Token': SERVICE_TOKEN };

/** A PATCH whose body is written slowly, so the server can be killed while it is in flight. */
function startSlowPatch(url: string, offset: number, data: Buffer, sentBeforeStall: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'PATCH',
      headers: { ...service, 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(data.length) },
    });
    req.on('error', () => resolve());
    req.on('response', () => resolve());
    req.write(data.subarray(0, sentBeforeStall), () => resolve());
  });
}

for (const backend of backendsUnderTest()) {
  describe(`crash and restart (${backend})`, { timeout: 120_000 }, () => {
    // On S3 only whole parts (8 MiB) are durable mid-PATCH, so the upload must pass one before the kill.
    const MIB_BEFORE_KILL = backend === 's3' ? 12 : 4;
    const DURABLE_MIB = backend === 's3' ? 8 : 4;

    test('SIGKILL between PATCHes and mid-PATCH: after each restart the upload resumes to a correct file and sha256, earlier records intact', async () => {
      const dataDir = tempDir();
      const storage = await openTestStorage(dataDir, backend);
      const storedOffset = (id: string) => storage.tusStore.getUpload(id).then((u) => u.offset, () => 0);
      try {
        let server = await spawnServer(dataDir, {}, backend);
        const earlier = randomBytes(200_000);
        const first = await tusUpload({ endpoint: server.url, headers: service, data: earlier, metadata: { user_id: 'carol', filename: 'earlier.bin' } }).done;
        const earlierKey = first.fileKey!;

        const data = randomBytes(20 * MiB);
        const created = await fetch(`${server.url}/v1/uploads`, {
          method: 'POST',
          headers: { ...service, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ user_id: 'carol', filename: 'big.bin' }) },
        });
        const uploadPath = new URL(created.headers.get('location')!).pathname;
        const id = uploadPath.split('/').pop()!;
        // A whole PATCH of 3 MiB (on S3: the tail object `<id>.part`), then a kill between PATCHes.
        assert.equal((await patchUpload(`${server.url}${uploadPath}`, service, 0, data.subarray(0, 3 * MiB))).status, 204);
        await server.kill('SIGKILL');

        server = await spawnServer(dataDir, {}, backend);
        assert.equal(Number((await headUpload(`${server.url}${uploadPath}`, service)).headers.get('upload-offset')), 3 * MiB);
        await startSlowPatch(`${server.url}${uploadPath}`, 3 * MiB, data.subarray(3 * MiB), (MIB_BEFORE_KILL - 3) * MiB);
        // Wait until bytes are durable past the first PATCH, then kill without any chance to clean up.
        for (let i = 0; i < 400 && (await storedOffset(id)) < DURABLE_MIB * MiB; i++) await new Promise((r) => setTimeout(r, 25));
        await server.kill('SIGKILL');

        server = await spawnServer(dataDir, {}, backend);
        try {
          const url = `${server.url}${uploadPath}`;
          const head = await headUpload(url, service);
          assert.equal(head.status, 200);
          const offset = Number(head.headers.get('upload-offset'));
          assert.ok(offset >= DURABLE_MIB * MiB && offset <= MIB_BEFORE_KILL * MiB, `offset ${offset}`);
          if (backend === 'file') {
            assert.ok(readFileSync(path.join(dataDir, 'uploads', id)).equals(data.subarray(0, offset)), 'stored bytes are a prefix of the file');
          }

          const result = await tusUpload({ endpoint: server.url, headers: service, data, uploadUrl: url, chunkSize: 5 * MiB }).done;
          const record = JSON.parse(result.body);
          assert.equal(record.sha256, sha256(data));
          assert.ok((await readStored(storage, record.key))!.equals(data));

          const meta = await fetch(`${server.url}/v1/files/metadata/${earlierKey}?user_id=carol`, { headers: service });
          assert.equal(meta.status, 200);
          assert.equal((await meta.json()).sha256, sha256(earlier));
          const usage = await (await fetch(`${server.url}/v1/usage?user_id=carol`, { headers: service })).json();
          assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [earlier.length + data.length, 0]);
          assert.equal(await storage.listUploadIds().then((ids) => ids.includes(id)), false);
        } finally {
          await server.kill('SIGKILL');
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}

describe('crash between the move of a finish and its transaction', () => {
  test('start-up records the file whose bytes reached their key, with its sha256, and charges it once', async () => {
    const dataDir = tempDir();
    let server = await startTestServer({ dataDir });
    const auth = { Authorization: `Bearer ${await server.token('erin')}` };
    const data = randomBytes(3000);
    const record = JSON.parse((await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'moved.txt', filetype: 'text/plain' } }).done).body);
    await server.stop({ keepData: true });

    // The state such a crash leaves: the bytes at the file's key, no upload bytes left, and the
    // database still holding the unfinished upload (the finish's transaction never ran).
    const [file] = await recordRows(dataDir, 'SELECT * FROM files WHERE key = ?', record.key);
    await unrecord(dataDir, file!);
    const storage = await openTestStorage(dataDir);
    assert.equal((await storage.listUploadIds()).includes(String(file!.upload_id)), false);

    server = await startTestServer({ dataDir });
    try {
      const list = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json();
      assert.deepEqual(list.files.map((f: { key: string; sha256: string; size: number }) => [f.key, f.sha256, f.size]), [[record.key, sha256(data), data.length]]);
      assert.ok((await server.readStored(record.key))?.equals(data));
      assert.equal(await server.services.repo.getUpload(String(file!.upload_id)), undefined);
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0]);
      // The upload's URL answers as a finished upload's.
      const head = await headUpload(`${server.url}/v1/uploads/${String(file!.upload_id)}`, auth);
      assert.equal(head.headers.get('x-file-key'), record.key);
    } finally {
      await server.stop();
    }
  });
});

/** The record of a finished file goes back to being its unfinished upload (the finish's transaction undone). */
async function unrecord(of: Parameters<typeof recordQuery>[0], file: Record<string, unknown>): Promise<void> {
  await recordQuery(of, 'DELETE FROM files WHERE key = ?', file.key);
  await recordQuery(of,
    `INSERT INTO uploads (id, user_id, length, reserved_bytes, filename, folder, content_type, created_at, touched_at, type_checked, detected_type)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
    file.upload_id, file.user_id, file.size, file.size, file.filename, file.folder, file.content_type, file.created_at, file.created_at, file.detected_type);
}

describe('a finish whose transaction failed after the move', () => {
  test('the next HEAD on the upload records the file and answers as for a finished upload', async () => {
    const server = await startTestServer();
    try {
      const auth = { Authorization: `Bearer ${await server.token('erin')}` };
      const data = randomBytes(2000);
      const record = JSON.parse((await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'moved.txt', filetype: 'text/plain' } }).done).body);
      const [file] = await recordRows(server, 'SELECT * FROM files WHERE key = ?', record.key);
      await unrecord(server, file!);

      const head = await headUpload(`${server.url}/v1/uploads/${String(file!.upload_id)}`, auth);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('x-file-key'), record.key);
      assert.equal(head.headers.get('upload-offset'), String(data.length));
      const list = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json();
      assert.deepEqual(list.files.map((f: { key: string; sha256: string }) => [f.key, f.sha256]), [[record.key, sha256(data)]]);
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0]);
    } finally {
      await server.stop();
    }
  });
});
