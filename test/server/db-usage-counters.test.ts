// Usage, reservations and unfinished uploads are per-user counters (user_usage) kept in the transactions that change
// uploads and files, so no request sums over a user's files. At every step of an upload's life —
// creation, deferred writes, finish, checksum refusal, termination, deletion, expiry, restart — the
// counters equal the sums over the rows, and /v1/usage reports them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { startTestServer, tempDir } from '../helpers/server.ts';
import { createUpload, patchUpload, TUS } from '../helpers/tus.ts';
import { expectTotals } from './usage-totals.ts';

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
});
