// The real server with DATABASE_URL (docs/several-instances.md): records, quotas and upload locks in a
// real PostgreSQL (test/support/postgres.ts), bytes in a Swift bucket. A tus-js-client upload in
// several PATCHes finishes with the right SHA-256, is listed and downloads through a signed link; the
// quota is enforced from PostgreSQL; a restart on the same database keeps every record; and a second
// server process on the same database and bucket takes every other PATCH of one upload.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { expectProblem } from '../helpers/problem.ts';
import { until } from '../helpers/until.ts';
import { storageEnvFor } from '../helpers/s3.ts';
import { ROOT, spawnServer, startTestServer, tempDir, type SpawnedServer, type TestServer } from '../helpers/server.ts';
import { createUpload, headUpload, patchUpload, TUS, tusUpload } from '../helpers/tus.ts';
import { POSTGRES_MISSING, startPostgres, type PostgresServer } from '../support/postgres.ts';

const MiB = 1024 * 1024;
const QUOTA = 12 * MiB;

describe('the server on PostgreSQL and S3', { skip: POSTGRES_MISSING }, () => {
  let postgres: PostgresServer;
  let server: TestServer;
  const dataDir = tempDir();
  const start = () => startTestServer({ dataDir, storage: 's3', env: { DATABASE_URL: postgres.url, QUOTA_DEFAULT_BYTES: String(QUOTA) } });

  before(async () => {
    postgres = await startPostgres();
    server = await start();
  });
  after(async () => {
    await server?.stop();
    await postgres?.stop();
  });

  test('an upload in several PATCHes is recorded in PostgreSQL, listed, and downloads through a signed link', async () => {
    const token = await server.token('pat');
    const auth = { Authorization: `Bearer ${token}` };
    // 9 MiB in 4 MiB PATCHes: the S3 part is 8 MiB, so every PATCH but the last leaves a tail in
    // `<id>.part` that the next reads back through the upload's metadata (which no cache keeps).
    const data = randomBytes(9 * MiB);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const result = await tusUpload({ endpoint: server.url, headers: auth, data, chunkSize: 4 * MiB, metadata: { filename: 'big.bin' } }).done;
    const key = result.fileKey!;
    assert.ok(key);

    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const row = (await db.query<{ sha256: string; size: string }>('SELECT sha256, size FROM files WHERE key = $1', [key])).rows[0];
      assert.equal(row?.sha256, sha256);
      assert.equal(Number(row?.size), data.length);
    } finally {
      await db.end();
    }
    assert.equal(existsSync(path.join(dataDir, 'data.db')), false, 'nothing is kept in SQLite');

    const listed = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json() as { files: Array<{ key: string; sha256: string }> };
    assert.deepEqual(listed.files.map((f) => [f.key, f.sha256]), [[key, sha256]]);
    const signed = await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth })).json() as { url: string };
    const got = await fetch(signed.url);
    assert.equal(got.status, 200);
    assert.equal(createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex'), sha256);
  });

  test('the quota kept in PostgreSQL refuses an upload that would pass it', async () => {
    const auth = { Authorization: `Bearer ${await server.token('pat')}` };
    // 9 MiB of 12 are used: 4 MiB more would pass the quota, 2 MiB would not.
    await expectProblem(await createUpload(server.url, { ...TUS, ...auth }, 4 * MiB), 413, 'quota_exceeded', 'quota', 'POST');
    const small = await createUpload(server.url, { ...TUS, ...auth }, 2 * MiB);
    assert.equal(small.status, 201);
  });

  test('a restart on the same database keeps every record', async () => {
    await server.stop({ keepData: true });
    server = await start();
    const auth = { Authorization: `Bearer ${await server.token('pat')}` };
    const listed = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json() as { files: Array<{ key: string }> };
    assert.equal(listed.files.length, 1);
    const signed = await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(listed.files[0]!.key)}`, { headers: auth })).json() as { url: string };
    const got = await fetch(signed.url);
    assert.equal(got.status, 200);
    assert.equal((await got.arrayBuffer()).byteLength, 9 * MiB);
    // The 2 MiB upload reserved before the restart still counts: 2 MiB more would pass the quota.
    await expectProblem(await createUpload(server.url, { ...TUS, ...auth }, 2 * MiB), 413, 'quota_exceeded', 'quota after restart', 'POST');
  });

  describe('a second server process on the same database and bucket', () => {
    let other: SpawnedServer;
    let origins: string[];
    before(async () => {
      // Its own DATA_DIR, the same database and bucket; the generated secrets are in the database.
      const otherDir = tempDir();
      other = await spawnServer(otherDir, { ...(await storageEnvFor(dataDir, 's3')), DATABASE_URL: postgres.url, QUOTA_DEFAULT_BYTES: String(QUOTA) });
      origins = [server.url, other.url];
    });
    after(async () => {
      await other?.kill();
    });

    /**
     * Creates on the first instance and sends PATCH i of `chunk` bytes to instance i % 2, each after
     * a HEAD there that must answer the offset the other instance left; returns the finished record.
     */
    async function alternate(user: string, data: Buffer, chunk: number, declareLengthAt?: number) {
      const auth = { ...TUS, Authorization: `Bearer ${await server.token(user)}` };
      const created = await createUpload(server.url, auth, declareLengthAt === undefined ? data.length : 'defer', { filename: 'both.bin' });
      assert.equal(created.status, 201);
      const uploadPath = new URL(created.headers.get('location')!).pathname;
      let finished: Response | undefined;
      for (let offset = 0, i = 0; offset < data.length; offset += chunk, i++) {
        const origin = origins[i % 2]!;
        const head = await headUpload(`${origin}${uploadPath}`, auth);
        assert.equal(head.status, 200);
        assert.equal(Number(head.headers.get('upload-offset')), offset, `HEAD ${i} on instance ${i % 2}`);
        const declare: Record<string, string> = i === declareLengthAt ? { 'Upload-Length': String(data.length) } : {};
        const res = await patchUpload(`${origin}${uploadPath}`, auth, offset, data.subarray(offset, offset + chunk), declare);
        // The PATCH that stores the last byte answers the file's record (200), the others 204.
        const last = offset + chunk >= data.length;
        assert.equal(res.status, last ? 200 : 204, `PATCH ${i} on instance ${i % 2}: ${await res.clone().text()}`);
        if (last) finished = res;
      }
      return await finished!.json() as { key: string; sha256: string };
    }

    async function downloadsEverywhere(user: string, key: string, sha256: string) {
      const auth = { Authorization: `Bearer ${await server.token(user)}` };
      for (const origin of origins) {
        const signed = await (await fetch(`${origin}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth })).json() as { url: string };
        const got = await fetch(signed.url);
        assert.equal(got.status, 200);
        assert.equal(createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex'), sha256);
      }
    }

    test('consecutive PATCHes of one upload alternate between the two and it finishes with the right SHA-256', async () => {
      const data = randomBytes(10 * MiB);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const record = await alternate('alternating', data, 3 * MiB);
      assert.equal(record.sha256, sha256);
      await downloadsEverywhere('alternating', record.key, sha256);
    });

    test('a length declared on one instance is known to the other, which finishes the upload', async () => {
      // PATCH 0 on the first instance (length still deferred), PATCH 1 declares it on the second,
      // PATCH 2 ends on the first: it must read the length the second wrote, not what it saw before.
      const data = randomBytes(10 * MiB);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const record = await alternate('deferring', data, 4 * MiB, 1);
      assert.equal(record.sha256, sha256);
      await downloadsEverywhere('deferring', record.key, sha256);
    });

    test('a request on one instance takes the upload from a PATCH still streaming on the other, and finishes it there', async () => {
      const auth = { ...TUS, Authorization: `Bearer ${await server.token('handover')}` };
      const data = randomBytes(6 * MiB);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const created = await createUpload(server.url, auth, data.length);
      assert.equal(created.status, 201);
      const uploadPath = new URL(created.headers.get('location')!).pathname;
      // A PATCH on the first instance that sends 1 MiB and then stalls, holding the upload's lock.
      let body!: ReadableStreamDefaultController<Uint8Array>;
      const stalled = fetch(`${origins[0]}${uploadPath}`, {
        method: 'PATCH',
        headers: { ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: new ReadableStream<Uint8Array>({ start: (c) => { body = c; } }),
        duplex: 'half',
      } as RequestInit).then((res) => res.status, () => 'cut');
      body.enqueue(new Uint8Array(data.subarray(0, MiB)));
      const db = new pg.Client({ connectionString: postgres.url });
      await db.connect();
      try {
        const uploadId = uploadPath.split('/').pop()!;
        await until('the stalled PATCH holds the lock', async () =>
          (await db.query('SELECT 1 FROM upload_locks WHERE upload_id = $1 AND expires_at > now()', [uploadId])).rowCount === 1);
        // The newer request wins (tus semantics): the second instance asks the first to release.
        const head = await headUpload(`${origins[1]}${uploadPath}`, auth);
        assert.equal(head.status, 200);
        const offset = Number(head.headers.get('upload-offset'));
        assert.ok(offset <= MiB, `offset ${offset}`);
        await stalled;
        body.close();
        const res = await patchUpload(`${origins[1]}${uploadPath}`, auth, offset, data.subarray(offset));
        assert.equal(res.status, 200, await res.clone().text());
        const record = await res.json() as { key: string; sha256: string };
        assert.equal(record.sha256, sha256);
        await downloadsEverywhere('handover', record.key, sha256);
      } finally {
        await db.end();
      }
    });

    test('npm run check-storage with DATABASE_URL checks the records in PostgreSQL against the bucket', async () => {
      const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/check-storage-cli.ts'), '--json'], {
        cwd: ROOT,
        env: { ...process.env, ...(await storageEnvFor(dataDir, 's3')), DATABASE_URL: postgres.url, DATA_DIR: tempDir() },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(result.status, 0, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout) as { records: number; findings: unknown[] };
      // The four files the tests above finished, all of them in the bucket.
      assert.equal(report.records, 4);
      assert.deepEqual(report.findings, []);
    });

    test('SIGTERM stops the second instance cleanly: its locker and pool close and the process exits 0', async () => {
      // main.ts exits 1 when closing fails (a lock that cannot be released, a pool that cannot end).
      assert.equal(await other.kill('SIGTERM'), 0, other.output());
      assert.match(other.output(), /"msg":"shutdown complete"/);
    });
  });
});
