// Expiry: unfinished uploads idle past UPLOAD_EXPIRY_SECONDS are removed with their reservations,
// periodically and at start-up, on each storage backend (on S3: the multipart upload is aborted and
// `.info`/`.part` deleted). Time is the server's injected clock, not the wall clock.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { fileKey } from '../../server/storage/keys.ts';
import { startTestServer, tempDir } from '../helpers/server.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { createUpload, headUpload, patchUpload } from '../helpers/tus.ts';

for (const backend of backendsUnderTest()) {
  describe(`expiry (${backend})`, () => {
    test('an idle upload expires; one that keeps receiving bytes does not', async () => {
      let clock = Date.now();
      const server = await startTestServer({ storage: backend, env: { UPLOAD_EXPIRY_SECONDS: '3600' }, now: () => clock });
      try {
        const auth = { Authorization: `Bearer ${await server.token('frank')}` };
        const idle = (await createUpload(server.url, auth, 100)).headers.get('location')!;
        const busy = (await createUpload(server.url, auth, 100)).headers.get('location')!;
        await patchUpload(idle, auth, 0, Buffer.alloc(10));
        clock += 3000 * 1000;
        const patched = await patchUpload(busy, auth, 0, Buffer.alloc(10));
        assert.equal(new Date(patched.headers.get('upload-expires')!).getTime(), Math.floor((clock + 3600 * 1000) / 1000) * 1000);
        clock += 1000 * 1000; // idle: 4000 s since its last byte; busy: 1000 s

        assert.equal(await server.services.lifecycle.expire(), 1);
        const idleId = idle.split('/').pop()!;
        assert.equal(await server.hasUpload(idleId), false);
        assert.equal(await server.hasUpload(busy.split('/').pop()!), true);
        // tus-android-client restarts only on 404, so an expired upload answers 404, never 410.
        assert.equal((await headUpload(idle, auth)).status, 404);
        assert.equal((await patchUpload(idle, auth, 10, Buffer.alloc(10))).status, 404);
        assert.equal((await headUpload(busy, auth)).status, 200);
        const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
        assert.equal(usage.reserved_bytes, 100);
      } finally {
        await server.stop();
      }
    });

    test('activity is recorded at most once a minute, and Upload-Expires never promises more than what is recorded', async () => {
      let clock = Date.now();
      const server = await startTestServer({ storage: backend, env: { UPLOAD_EXPIRY_SECONDS: '3600' }, now: () => clock });
      try {
        const auth = { Authorization: `Bearer ${await server.token('frank')}` };
        const created = await createUpload(server.url, auth, 100);
        const url = created.headers.get('location')!;
        const id = url.split('/').pop()!;
        const createdAt = clock;
        const expires = (r: Response) => new Date(r.headers.get('upload-expires')!).getTime();
        const second = (ms: number) => Math.floor(ms / 1000) * 1000;

        clock += 30_000; // within the minute: nothing is written, and the header says so
        const early = await patchUpload(url, auth, 0, Buffer.alloc(10));
        assert.equal(early.status, 204);
        assert.equal(expires(early), second(createdAt + 3600_000));
        assert.equal((await server.services.repo.getUpload(id))!.touched_at, createdAt);

        clock += 31_000; // 61 s after the last record: recorded
        const later = await patchUpload(url, auth, 10, Buffer.alloc(10));
        assert.equal(expires(later), second(clock + 3600_000));
        assert.equal((await server.services.repo.getUpload(id))!.touched_at, clock);

        clock += 3600_000 - 1; // one millisecond before the promised expiry: still there
        assert.equal(await server.services.lifecycle.expire(), 0);
        assert.equal(await server.hasUpload(id), true);
        clock += 2;
        assert.equal(await server.services.lifecycle.expire(), 1);
        assert.equal(await server.hasUpload(id), false);
      } finally {
        await server.stop();
      }
    });

    test('start-up removes uploads that went idle while the server was down', async () => {
      const dataDir = tempDir();
      let clock = Date.now();
      let server = await startTestServer({ storage: backend, dataDir, env: { UPLOAD_EXPIRY_SECONDS: '60' }, now: () => clock });
      const auth = { Authorization: `Bearer ${await server.token('gina')}` };
      const url = (await createUpload(server.url, auth, 100)).headers.get('location')!;
      await server.stop({ keepData: true });
      clock += 61_000;
      server = await startTestServer({ storage: backend, dataDir, env: { UPLOAD_EXPIRY_SECONDS: '60' }, now: () => clock });
      try {
        assert.equal(await server.services.repo.getUpload(url.split('/').pop()!), undefined);
        assert.equal(await server.hasUpload(url.split('/').pop()!), false);
      } finally {
        await server.stop();
      }
    });

    test('a finish cut between its move and its record is recorded by expiry, never discarded with its bytes left at the key', async () => {
      let clock = Date.now();
      const server = await startTestServer({ storage: backend, env: { UPLOAD_EXPIRY_SECONDS: '3600' }, now: () => clock });
      try {
        const auth = { Authorization: `Bearer ${await server.token('hana')}` };
        const data = randomBytes(300);
        const url = (await createUpload(server.url, auth, data.length, { filename: 'moved.txt' })).headers.get('location')!;
        const id = url.split('/').pop()!;
        assert.equal((await patchUpload(url, auth, 0, data.subarray(0, 299))).status, 204);
        // What an instance that died mid-finish leaves: every byte stored, moved to the file's key,
        // and the file never recorded (hooks/finalize.ts moves first, records after).
        const { storage } = server.services;
        assert.equal(await storage.tusStore.write(Readable.from([data.subarray(299)]), id, 299), 300);
        const key = fileKey('hana', new Date(clock), id, 'moved.txt');
        await storage.promote(id, key);
        const idle = (await createUpload(server.url, auth, 50)).headers.get('location')!;

        clock += 4000 * 1000;
        assert.equal(await server.services.lifecycle.expire(), 1, 'the idle upload expires; the moved one is recorded');
        assert.equal(await server.hasUpload(idle.split('/').pop()!), false);
        const file = await (await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth })).json();
        assert.deepEqual([file.key, file.size, file.sha256], [key, data.length, createHash('sha256').update(data).digest('hex')]);
        assert.equal(await server.services.repo.getUpload(id), undefined);
        const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
        assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0]);
      } finally {
        await server.stop();
      }
    });
  });
}
