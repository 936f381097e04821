// /healthz (server/routes/health.ts): disk, database and storage, as load balancers read them.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import type { S3Storage } from '../../../server/storage/s3.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';

/** Storage made unable to accept uploads, and made able again: local disk or S3, as the server stores. */
function storageFault(server: TestServer): { fail(): Promise<void>; recover(): Promise<void> } {
  if (server.storage === 'file') {
    // The upload area replaced by a plain file.
    const uploads = path.join(server.dataDir, 'uploads');
    return {
      async fail() {
        rmSync(uploads, { recursive: true, force: true });
        writeFileSync(uploads, 'not a directory');
      },
      async recover() {
        rmSync(uploads);
      },
    };
  }
  // The (still empty) bucket deleted, then made again.
  const { client, bucket } = server.services.storage as S3Storage;
  return {
    fail: async () => void (await client.send(new DeleteBucketCommand({ Bucket: bucket }))),
    recover: async () => void (await client.send(new CreateBucketCommand({ Bucket: bucket }))),
  };
}

describe('healthz', () => {
  test('reports disk, db and storage; 503 when storage fails, 200 again once it recovers', async () => {
    const server = await startTestServer();
    try {
      const ok = await fetch(`${server.url}/healthz`);
      assert.equal(ok.status, 200);
      const body = await ok.json();
      assert.equal(body.status, 'ok');
      assert.equal(body.db.ok, true);
      assert.deepEqual(body.storage, { ok: true, kind: server.storage });
      assert.ok(body.disk.free_bytes > 0 && body.disk.total_bytes >= body.disk.free_bytes);

      const fault = storageFault(server);
      await fault.fail();
      const failing = await fetch(`${server.url}/healthz`);
      assert.equal(failing.status, 503);
      const failed = await failing.json();
      assert.equal(failed.status, 'fail');
      assert.equal(failed.storage.ok, false);
      assert.equal(failed.db.ok, true);
      await fault.recover();
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.stop();
    }
  });
});
