// /healthz (server/routes/health.ts): disk, database and storage, as load balancers read them.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { startTestServer } from '../../helpers/server.ts';

describe('healthz', () => {
  test('reports disk, db and storage; 503 when storage fails, 200 again once it recovers', async () => {
    const server = await startTestServer();
    try {
      const ok = await fetch(`${server.url}/healthz`);
      assert.equal(ok.status, 200);
      const body = await ok.json();
      assert.equal(body.status, 'ok');
      assert.equal(body.db.ok, true);
      assert.deepEqual(body.storage, { ok: true, kind: 'file' });
      assert.ok(body.disk.free_bytes > 0 && body.disk.total_bytes >= body.disk.free_bytes);

      // The upload area replaced by a plain file: storage can no longer accept uploads.
      const uploads = path.join(server.dataDir, 'uploads');
      rmSync(uploads, { recursive: true, force: true });
      writeFileSync(uploads, 'not a directory');
      const failing = await fetch(`${server.url}/healthz`);
      assert.equal(failing.status, 503);
      const failed = await failing.json();
      assert.equal(failed.status, 'fail');
      assert.equal(failed.storage.ok, false);
      assert.equal(failed.db.ok, true);
      rmSync(uploads);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.stop();
    }
  });
});
