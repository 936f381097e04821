// Half-state never answers 500 and never holds quota: an upload whose tus bookkeeping (its row of
// tus_uploads on local disk, `.info` on S3) is missing answers 404 to HEAD/PATCH and is terminated cleanly by DELETE;
// uploads whose storage entry a crash cut off are released at the next start-up, not at expiry.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import type { S3Storage } from '../../../server/storage/s3.ts';
import type { Storage } from '../../../server/storage/types.ts';
import { expectProblem } from '../../helpers/problem.ts';
import { openTestStorage, startTestServer, tempDir } from '../../helpers/server.ts';
import { backendsUnderTest, type TestStorage } from '../../helpers/s3.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../../helpers/tus.ts';

/** Removes tus's bookkeeping of an upload and nothing else: its row of tus_uploads, or its `.info`. */
async function dropBookkeeping(storage: Storage, dataDir: string, uploadId: string): Promise<void> {
  if (storage.kind === 'file') {
    // A connection of its own, as a fault outside the server would come (the server may be running).
    const db = new Database(path.join(dataDir, 'stream-line.sqlite'));
    try {
      assert.equal(db.prepare('DELETE FROM tus_uploads WHERE id = ?').run(uploadId).changes, 1);
    } finally {
      db.close();
    }
    return;
  }
  const s3 = storage as S3Storage;
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${uploadId}.info` }));
  await s3.tusStore.forget(uploadId); // S3Store caches what it read of `.info`
}

const idOf = (url: string) => url.split('/').pop()!;

for (const backend of backendsUnderTest() as TestStorage[]) {
  describe(`half-state (${backend})`, () => {
    test('an upload without its tus bookkeeping: HEAD and PATCH answer 404, DELETE terminates it and frees the reservation', async () => {
      const server = await startTestServer({ storage: backend });
      try {
        const auth = { Authorization: `Bearer ${await server.token('hank')}` };
        const url = (await createUpload(server.url, auth, 1000)).headers.get('location')!;
        assert.equal((await patchUpload(url, auth, 0, Buffer.alloc(100))).status, 204);
        await dropBookkeeping(server.services.storage, server.dataDir, idOf(url));

        await expectProblem(await headUpload(url, auth), 404, 'not_found', '', 'HEAD');
        await expectProblem(await patchUpload(url, auth, 100, Buffer.alloc(100)), 404, 'not_found');
        const deleted = await fetch(url, { method: 'DELETE', headers: { ...TUS, ...auth } });
        assert.equal(deleted.status, 204, await deleted.clone().text());
        assert.equal(deleted.headers.get('tus-resumable'), '1.0.0');
        const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
        assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [0, 0]);
        assert.equal(await server.services.repo.getUpload(idOf(url)), undefined);
        assert.equal(await server.hasUpload(idOf(url)), false, 'nothing of the upload is left in storage');
        await expectProblem(await fetch(url, { method: 'DELETE', headers: { ...TUS, ...auth } }), 404, 'not_found');
      } finally {
        await server.stop();
      }
    });

    test('start-up releases uploads that lost their storage entry (a creation cut by a crash) and keeps the others', async () => {
      const dataDir = tempDir();
      let server = await startTestServer({ storage: backend, dataDir });
      const auth = { Authorization: `Bearer ${await server.token('ivan')}` };
      const gone = (await createUpload(server.url, auth, 1000)).headers.get('location')!;
      const halfGone = (await createUpload(server.url, auth, 2000)).headers.get('location')!;
      const kept = (await createUpload(server.url, auth, 500)).headers.get('location')!;
      assert.equal((await patchUpload(kept, auth, 0, Buffer.alloc(100))).status, 204);
      await server.stop({ keepData: true });

      // What a crash inside tus's creation leaves: the row, and no store entry (or the data without
      // its bookkeeping: the step that records tus's info never ran).
      const storage = await openTestStorage(dataDir, backend);
      await storage.removeUpload(idOf(gone));
      await dropBookkeeping(storage, dataDir, idOf(halfGone));

      server = await startTestServer({ storage: backend, dataDir });
      try {
        const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
        assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [0, 500]);
        for (const url of [gone, halfGone]) {
          assert.equal(await server.services.repo.getUpload(idOf(url)), undefined);
          assert.equal(await server.hasUpload(idOf(url)), false);
          await expectProblem(await headUpload(url.replace(/^http:\/\/[^/]+/, server.url), auth), 404, 'not_found', '', 'HEAD');
        }
        const head = await headUpload(kept.replace(/^http:\/\/[^/]+/, server.url), auth);
        assert.equal(head.headers.get('upload-offset'), '100');
      } finally {
        await server.stop();
      }
    });
  });
}
