// Usage, reservations and unfinished uploads are per-user counters (user_usage) kept in the transactions that change
// uploads and files, so no request sums over a user's files. At every step of an upload's life —
// creation, deferred writes, finish, checksum refusal, termination, deletion, expiry, restart — the
// counters equal the sums over the rows, and /v1/usage reports them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { MIGRATIONS } from '../../server/db/open.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { createUpload, patchUpload, TUS } from '../helpers/tus.ts';

type Totals = [used: number, reserved: number, unfinished: number];

/** The sums the counters must equal, computed from the rows themselves. */
function summed(server: TestServer, userId: string): Totals {
  const db = server.services.db;
  const used = db.prepare<[string], { n: number }>('SELECT coalesce(sum(size), 0) AS n FROM files WHERE user_id = ?').get(userId)!.n;
  const { reserved, unfinished } = db
    .prepare<[string], { reserved: number; unfinished: number }>('SELECT coalesce(sum(reserved_bytes), 0) AS reserved, count(*) AS unfinished FROM uploads WHERE user_id = ?')
    .get(userId)!;
  return [used, reserved, unfinished];
}

function counted(server: TestServer, userId: string): Totals {
  const row = server.services.db
    .prepare<[string], { used_bytes: number; reserved_bytes: number; uploads: number }>('SELECT used_bytes, reserved_bytes, uploads FROM user_usage WHERE user_id = ?')
    .get(userId);
  return [row?.used_bytes ?? 0, row?.reserved_bytes ?? 0, row?.uploads ?? 0];
}

async function expectTotals(server: TestServer, auth: Record<string, string>, userId: string, expected: Totals, step: string): Promise<void> {
  assert.deepEqual(summed(server, userId), expected, `${step}: the rows`);
  assert.deepEqual(counted(server, userId), expected, `${step}: the counters`);
  const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
  assert.deepEqual([usage.used_bytes, usage.reserved_bytes], expected.slice(0, 2), `${step}: /v1/usage`);
}

describe('usage counters', () => {
  test('stay equal to the sums across create, deferred writes, finish, refusal, termination, delete, expiry and restart', async () => {
    const dataDir = tempDir();
    let clock = Date.now();
    const options = { dataDir, env: { UPLOAD_EXPIRY_SECONDS: '600', QUOTA_DEFAULT_BYTES: '100000' }, now: () => clock };
    let server = await startTestServer(options);
    const auth = { Authorization: `Bearer ${await server.token('vera')}` };
    const other = { Authorization: `Bearer ${await server.token('walt')}` };
    try {
      const a = (await createUpload(server.url, auth, 1000)).headers.get('location')!;
      await expectTotals(server, auth, 'vera', [0, 1000, 1], 'created');
      const b = (await createUpload(server.url, auth, 'defer')).headers.get('location')!;
      assert.equal((await patchUpload(b, auth, 0, Buffer.alloc(300))).status, 204);
      await expectTotals(server, auth, 'vera', [0, 1300, 2], 'deferred write');
      // Someone else's activity never moves this user's counters.
      const w = (await createUpload(server.url, other, 700)).headers.get('location')!;
      assert.equal((await patchUpload(w, other, 0, Buffer.alloc(700))).status, 200);
      await expectTotals(server, other, 'walt', [700, 0, 0], 'the other user');

      const finished = await patchUpload(a, auth, 0, randomBytes(1000));
      assert.equal(finished.status, 200);
      const { key } = await finished.json();
      await expectTotals(server, auth, 'vera', [1000, 300, 1], 'finished');

      const wrong = createHash('sha256').update('something else').digest('hex');
      const c = (await createUpload(server.url, auth, 50, { sha256: wrong })).headers.get('location')!;
      await expectTotals(server, auth, 'vera', [1000, 350, 2], 'created with a checksum');
      assert.equal((await patchUpload(c, auth, 0, Buffer.alloc(50))).status, 460);
      await expectTotals(server, auth, 'vera', [1000, 300, 1], 'checksum refused');

      const d = (await createUpload(server.url, auth, 5000)).headers.get('location')!;
      assert.equal((await fetch(d, { method: 'DELETE', headers: { ...TUS, ...auth } })).status, 204);
      await expectTotals(server, auth, 'vera', [1000, 300, 1], 'terminated');

      assert.equal((await fetch(`${server.url}/v1/files/${key}`, { method: 'DELETE', headers: auth })).status, 200);
      await expectTotals(server, auth, 'vera', [0, 300, 1], 'file deleted');

      clock += 601_000;
      assert.equal(await server.services.lifecycle.expire(), 1);
      await expectTotals(server, auth, 'vera', [0, 0, 0], 'expired');
      assert.equal((await createUpload(server.url, auth, 100_000)).status, 201, 'the whole quota is free again');
      await expectTotals(server, auth, 'vera', [0, 100_000, 1], 'the whole quota reserved');

      await server.stop({ keepData: true });
      server = await startTestServer(options);
      await expectTotals(server, auth, 'vera', [0, 100_000, 1], 'after a restart');
      await expectTotals(server, other, 'walt', [700, 0, 0], 'the other user after a restart');
    } finally {
      await server.stop();
    }
  });

  test('a database from before the counters gets them from its rows when it is migrated', async () => {
    const dataDir = tempDir();
    let server = await startTestServer({ dataDir });
    const auth = { Authorization: `Bearer ${await server.token('xena')}` };
    const done = (await createUpload(server.url, auth, 400)).headers.get('location')!;
    assert.equal((await patchUpload(done, auth, 0, Buffer.alloc(400))).status, 200);
    await createUpload(server.url, auth, 250);
    // Back to the schema without counters: what a database written by the previous release holds.
    const db = server.services.db;
    // Back to the version before the counters' migration; the ones after it run again (idempotent).
    const version = MIGRATIONS.findIndex((sql) => sql.includes('CREATE TABLE user_usage')) + 1;
    assert.ok(version > 0, 'the counters migration is found');
    for (const { name } of db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('uploads', 'files')").all()) {
      db.exec(`DROP TRIGGER ${name}`);
    }
    db.exec('DROP TABLE user_usage');
    db.pragma(`user_version = ${version - 1}`);
    await server.stop({ keepData: true });

    server = await startTestServer({ dataDir });
    try {
      await expectTotals(server, auth, 'xena', [400, 250, 1], 'migrated');
    } finally {
      await server.stop();
    }
  });
});
