// Background work shared by two server processes on one PostgreSQL and one Swift bucket
// (docs/several-instances.md): the expiry sweep runs on one instance at a time and never cuts a
// PATCH that the other instance is receiving; an instance that restarts while the other is inside
// a finish leaves that finish to it; generated secrets live in the database, so two instances
// started at once on a fresh one accept each other's tokens and links.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestBucket, storageEnvFor } from '../helpers/s3.ts';
import { ROOT, SERVICE_TOKEN, spawnServer, startTestServer, tempDir, type SpawnedServer } from '../helpers/server.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../helpers/tus.ts';
import { partFiles } from '../helpers/upload-bytes-held.ts';
import { until } from '../helpers/until.ts';
import { POSTGRES_MISSING, startPostgres, type PostgresServer } from '../support/postgres.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A sample of a Prometheus metric on `origin`, summed over the series whose labels include `labels`. */
async function metric(origin: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

const sweeps = (origin: string) => metric(origin, 'sl_hook_duration_seconds_count', { hook: 'expire' });

/**
 * An S3 proxy in front of Swift that can hold the answer of one chosen request: the request reaches
 * Swift and is carried out there, and its answer waits until the test lets it go. Headers are
 * forwarded untouched (the client signed the proxy's Host).
 */
async function startHoldingProxy(target: string) {
  let armed: ((req: http.IncomingMessage) => boolean) | undefined;
  let heldAnswer: (() => void) | undefined;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const upstream = http.request(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers }, (answer) => {
      const deliver = () => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      };
      if (armed?.(req)) {
        armed = undefined;
        heldAnswer = deliver;
      } else deliver();
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Holds the answer of the next request `matches` selects. */
    hold(matches: (req: http.IncomingMessage) => boolean) {
      armed = matches;
    },
    get holding() {
      return heldAnswer !== undefined;
    },
    /** "METHOD url" of every request that reached the proxy, in order. */
    seen,
    release() {
      heldAnswer?.();
      heldAnswer = undefined;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('background work across two instances on PostgreSQL and S3', { skip: POSTGRES_MISSING }, () => {
  let postgres: PostgresServer;
  let db: pg.Client;
  const running: SpawnedServer[] = [];
  const spawn = async (env: Record<string, string>) => {
    const server = await spawnServer(tempDir(), env);
    running.push(server);
    return server;
  };

  before(async () => {
    postgres = await startPostgres();
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
  });
  after(async () => {
    await Promise.all(running.map((s) => s.kill('SIGKILL')));
    await db?.end();
    await postgres?.stop();
  });

  describe('one database, one bucket; uploads expire after 2 s', () => {
    let bucket: Awaited<ReturnType<typeof createTestBucket>>;
    let proxy: Awaited<ReturnType<typeof startHoldingProxy>>;
    let a: SpawnedServer;
    let b: SpawnedServer;
    let env: Record<string, string>;
    let auth: Record<string, string>;

    before(async () => {
      bucket = await createTestBucket();
      proxy = await startHoldingProxy(bucket.endpoint);
      // A silent PATCH stays open for minutes (UPLOAD_IDLE_TIMEOUT_SECONDS): only expiry could cut it.
      env = { ...bucket.env, DATABASE_URL: postgres.url, UPLOAD_EXPIRY_SECONDS: '2', UPLOAD_IDLE_TIMEOUT_SECONDS: '600' };
      // B first: its start-up sweep takes the expiry lease, which it renews at every sweep.
      b = await spawn(env);
      await until('B swept', async () => (await sweeps(b.url)) >= 1);
      // A reaches the bucket through the proxy, which can hold A inside a finish.
      a = await spawn({ ...env, S3_ENDPOINT: proxy.url });
      const minted = await fetch(`${a.url}/v1/files/generate-token?user_id=patient`, { method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN } });
      assert.equal(minted.status, 200);
      auth = { ...TUS, Authorization: `Bearer ${((await minted.json()) as { token: string }).token}` };
    });
    after(async () => {
      proxy?.release();
      await proxy?.close();
    });

    test("a PATCH silent on one instance for longer than the expiry is not cut by the other's sweep; an idle upload expires once, on one instance", async () => {
      const data = randomBytes(512 * KiB);
      const created = await createUpload(a.url, auth, data.length, { filename: 'slow.bin' });
      assert.equal(created.status, 201);
      const uploadPath = new URL(created.headers.get('location')!).pathname;
      const uploadId = uploadPath.split('/').pop()!;
      // The PATCH opens on A and sends nothing yet (its headers only): A holds the upload's lock,
      // and the upload's last activity is the PATCH's start, recorded before tus takes the lock.
      const patch = http.request(`${a.url}${uploadPath}`, {
        method: 'PATCH',
        headers: { ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Transfer-Encoding': 'chunked' },
      });
      const patched = new Promise<{ status: number; text: string }>((resolve) => {
        patch.on('response', (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        patch.on('error', (error) => resolve({ status: 0, text: String(error) }));
      });
      patch.flushHeaders();
      await until('A receives the silent PATCH and holds its lock', async () =>
        (await metric(a.url, 'sl_uploads_receiving')) === 1 &&
        (await db.query('SELECT 1 FROM upload_locks WHERE upload_id = $1 AND expires_at > now()', [uploadId])).rowCount === 1);

      // An upload created after that and left idle: once it has expired, a sweep has seen the
      // silent upload idle too; one more sweep of B after that, to be sure B's was among them.
      const idle = await createUpload(a.url, auth, 10, { filename: 'idle.bin' });
      assert.equal(idle.status, 201);
      const idleUrl = `${a.url}${new URL(idle.headers.get('location')!).pathname}`;
      await until('the idle upload expired', async () => (await headUpload(idleUrl, auth)).status === 404);
      const seen = await sweeps(b.url);
      await until('B swept again', async () => (await sweeps(b.url)) > seen);

      patch.end(data);
      const result = await patched;
      assert.equal(result.status, 200, `the PATCH was cut: ${result.status} ${result.text}\n${[a, b].map((s) => s.output().split('\n').filter((l) => !l.includes('"msg":"request"') || l.includes('PATCH')).join('\n')).join('\n---\n')}`);
      assert.equal((JSON.parse(result.text) as { sha256: string }).sha256, createHash('sha256').update(data).digest('hex'));

      // One instance sweeps (the lease holder, B); the idle upload expired once.
      assert.equal(await sweeps(a.url), 0, 'A never swept while B held the lease');
      const expired = (await metric(a.url, 'sl_uploads_total', { event: 'expired' })) + (await metric(b.url, 'sl_uploads_total', { event: 'expired' }));
      assert.equal(expired, 1);
    });

    test('an instance restarting while the other is inside a finish leaves that finish to it', async () => {
      const data = randomBytes(300 * KiB);
      const created = await createUpload(a.url, auth, data.length, { filename: 'finishing.bin' });
      assert.equal(created.status, 201);
      const uploadPath = new URL(created.headers.get('location')!).pathname;
      // A's finish copies the bytes to the file's key, then deletes the upload's objects: Swift
      // deletes them, and A waits for the answer, between its move and its record.
      proxy.hold((req) => req.method === 'POST' && /[?&]delete/.test(req.url ?? ''));
      const patched = patchUpload(`${a.url}${uploadPath}`, auth, 0, data);
      await until('A is inside the finish', () => proxy.holding);

      // B restarts now: its start-up repair sees an unfinished upload whose bytes sit at their key.
      assert.equal(await b.kill('SIGTERM'), 0);
      b = await spawn(env);
      proxy.release();
      const res = await patched;
      assert.equal(res.status, 200, `the finish on A failed: ${await res.clone().text()}`);
      const record = await res.json() as { key: string; sha256: string };
      assert.equal(record.sha256, createHash('sha256').update(data).digest('hex'));
      const files = await db.query('SELECT key FROM files WHERE upload_id = $1', [uploadPath.split('/').pop()]);
      assert.deepEqual(files.rows.map((r: { key: string }) => r.key), [record.key]);
      assert.doesNotMatch(b.output(), /finish was interrupted/, 'B recorded the file of a finish in flight on A');
    });

    test('an instance restarting while the other is deleting a file leaves that deletion to it', async () => {
      const data = randomBytes(1000);
      const created = await createUpload(a.url, auth, data.length, { filename: 'doomed.bin' });
      const done = await patchUpload(`${a.url}${new URL(created.headers.get('location')!).pathname}`, auth, 0, data);
      assert.equal(done.status, 200);
      const { key } = await done.json() as { key: string };
      // A marks the record 'deleting' and deletes the object: Swift deletes it, A waits for the answer.
      proxy.hold((req) => req.method === 'DELETE' && decodeURIComponent(new URL(req.url ?? '/', proxy.url).pathname).endsWith(key));
      const deleted = fetch(`${a.url}/v1/files/${encodeURIComponent(key)}`, { method: 'DELETE', headers: auth });
      await until('A is inside the deletion', () => proxy.holding);

      assert.equal(await b.kill('SIGTERM'), 0);
      b = await spawn(env);
      proxy.release();
      const res = await deleted;
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await db.query('SELECT 1 FROM files WHERE key = $1', [key])).rowCount, 0);
      assert.doesNotMatch(b.output(), /finished work interrupted/, "B's start-up repair finished A's deletion in flight");
    });

    test('a PATCH cut on one instance while its bytes are still being stored: the other instance waits for them, then reports where they end', async () => {
      // C reaches the bucket through the proxy; its part files are in its own TMPDIR, to be watched.
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'sl-cut-write-'));
      const c = await spawn({ ...env, S3_ENDPOINT: proxy.url, TMPDIR: tmp });
      const data = randomBytes(12 * MiB);
      const created = await createUpload(c.url, auth, data.length, { filename: 'cut-while-storing.bin' });
      assert.equal(created.status, 201);
      const uploadPath = new URL(created.headers.get('location')!).pathname;
      const uploadId = uploadPath.split('/').pop()!;

      // 9 MiB of a PATCH to C: its first 8 MiB part reaches Swift, whose answer the proxy holds, and
      // C gathers the next MiB in a part file.
      proxy.hold((req) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? ''));
      const { hostname, port } = new URL(c.url);
      const socket = net.connect(Number(port), hostname);
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const head = [`PATCH ${uploadPath} HTTP/1.1`, `Host: ${hostname}:${port}`, ...Object.entries(auth).map(([k, v]) => `${k}: ${v}`),
        'Upload-Offset: 0', 'Content-Type: application/offset+octet-stream', `Content-Length: ${data.length}`, '', ''].join('\r\n');
      socket.write(head);
      socket.write(data.subarray(0, 9 * MiB));
      await until('C uploads its first part', () => proxy.holding);
      await until('C holds the MiB after it', () => [...partFiles(tmp).values()].includes(MiB));

      // The cut: C stores the MiB it holds as the upload's tail (`<id>.part`) and waits for its part.
      const holder = (await db.query<{ instance_id: string }>('SELECT instance_id FROM upload_locks WHERE upload_id = $1', [uploadId])).rows[0]!.instance_id;
      let asked = false;
      db.on('notification', (n) => {
        if (n.channel === `upload_lock_${holder}` && JSON.parse(n.payload ?? '{}').upload === uploadId) asked = true;
      });
      await db.query(`LISTEN upload_lock_${holder}`);
      socket.destroy();
      await until("C stores the cut PATCH's tail", () => proxy.seen.some((line) => line.startsWith('PUT ') && line.includes(`${uploadId}.part`)));

      // The client resumes on B: HEAD must not answer from what C has not finished storing.
      let answered = false;
      const resumed = headUpload(`${b.url}${uploadPath}`, auth).finally(() => (answered = true));
      await until('B answered, or asked C for the lock', () => answered || asked);
      assert.equal(answered, false, "B answered HEAD while C's cut PATCH was still storing its bytes");
      proxy.release();
      const seen = await resumed;
      assert.equal(seen.status, 200);
      const offset = Number(seen.headers.get('upload-offset'));
      assert.equal(offset, 9 * MiB, 'the part and the tail C held are both kept');
      assert.equal(Number((await headUpload(`${c.url}${uploadPath}`, auth)).headers.get('upload-offset')), offset);

      const rest = await patchUpload(`${b.url}${uploadPath}`, auth, offset, data.subarray(offset));
      assert.equal(rest.status, 200, await rest.clone().text());
      assert.equal(((await rest.json()) as { sha256: string }).sha256, createHash('sha256').update(data).digest('hex'));
      await db.query(`UNLISTEN upload_lock_${holder}`);
      assert.equal(await c.kill('SIGTERM'), 0);
      rmSync(tmp, { recursive: true, force: true });
    });

    test("when the lease holder stops, the other instance takes the sweep over", async () => {
      assert.equal(await b.kill('SIGTERM'), 0);
      const idle = await createUpload(a.url, auth, 10, { filename: 'later.bin' });
      assert.equal(idle.status, 201);
      const idleUrl = `${a.url}${new URL(idle.headers.get('location')!).pathname}`;
      await until('A expired the idle upload', async () => (await headUpload(idleUrl, auth)).status === 404);
      assert.ok((await sweeps(a.url)) > 0);
    });

    test('a deletion left by an instance that died is finished by the instance that sweeps, once its heartbeat lapsed', async () => {
      const c = await spawn({ ...env, S3_ENDPOINT: proxy.url });
      const data = randomBytes(1000);
      const created = await createUpload(c.url, auth, data.length, { filename: 'orphaned.bin' });
      const done = await patchUpload(`${c.url}${new URL(created.headers.get('location')!).pathname}`, auth, 0, data);
      assert.equal(done.status, 200);
      const { key } = await done.json() as { key: string };
      proxy.hold((req) => req.method === 'DELETE' && decodeURIComponent(new URL(req.url ?? '/', proxy.url).pathname).endsWith(key));
      void fetch(`${c.url}/v1/files/${encodeURIComponent(key)}`, { method: 'DELETE', headers: auth }).catch(() => {});
      await until('C is inside the deletion', () => proxy.holding);
      await c.kill('SIGKILL');
      proxy.release();
      assert.equal((await db.query("SELECT state FROM files WHERE key = $1", [key])).rows[0]?.state, 'deleting');
      // C's heartbeat lapses (30 s), then A's next sweep finishes the deletion.
      await until('A finished the deletion', async () => (await db.query('SELECT 1 FROM files WHERE key = $1', [key])).rowCount === 0, 180_000);
      // The line is written after the record is gone, and reaches this process through a pipe.
      await until("A's log line for it", () => /finished the deletion of an instance that is gone/.test(a.output()));
    });
  });

  test('two instances started at once on a fresh database generate one set of secrets there, and accept each other\'s tokens and links', async () => {
    await db.query('CREATE DATABASE twins');
    const url = new URL(postgres.url);
    url.pathname = '/twins';
    const bucket = await createTestBucket();
    // No AUTH_SERVICE_TOKEN, no UPLOAD_SIGNING_KEY: both are generated, with the user-token key.
    const env = { ...bucket.env, DATABASE_URL: url.href, AUTH_SERVICE_TOKEN: '' };
    const [x, y] = await Promise.all([spawn(env), spawn(env)]);

    // The operator's way to the service token: npm run token, here with X's DATA_DIR.
    const dataDirOf = (s: SpawnedServer) => /"data_dir":"([^"]+)"/.exec(s.output())![1]!;
    const cli = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/token-cli.ts'), '--service'], {
      cwd: ROOT, env: { ...process.env, ...env, DATA_DIR: dataDirOf(x) }, encoding: 'utf8', timeout: 120_000,
    });
    assert.equal(cli.status, 0, cli.stderr);
    const serviceToken = cli.stdout.trim();

    const mint = async (on: SpawnedServer, user: string) => {
      const res = await fetch(`${on.url}/v1/files/generate-token?user_id=${user}`, { method: 'POST', headers: { 'X-Service-Token': serviceToken } });
      assert.equal(res.status, 200, `the service token on ${on.url}`);
      return { ...TUS, Authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
    };
    for (const [signer, verifier] of [[x, y], [y, x]] as const) {
      const auth = await mint(signer, 'twin');
      assert.equal((await fetch(`${verifier.url}/v1/files/all`, { headers: auth })).status, 200, 'a user token signed by one instance is accepted by the other');
    }

    // A link signed by X downloads from Y.
    const auth = await mint(x, 'linker');
    const data = randomBytes(1000);
    const created = await createUpload(x.url, auth, data.length, { filename: 'linked.bin' });
    const done = await patchUpload(`${x.url}${new URL(created.headers.get('location')!).pathname}`, auth, 0, data);
    assert.equal(done.status, 200);
    const { key } = await done.json() as { key: string };
    const signed = await (await fetch(`${x.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth })).json() as { url: string };
    const link = new URL(signed.url);
    const got = await fetch(`${y.url}${link.pathname}${link.search}`);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);

    for (const s of [x, y]) {
      assert.equal(s.output().includes(serviceToken), false, 'secrets are never logged');
      assert.equal(existsSync(path.join(dataDirOf(s), 'secrets.json')), false, 'nothing is kept in DATA_DIR');
    }
  });

  test('an instance moving from SQLite to PostgreSQL brings its generated secrets: tokens handed out before stay valid', async () => {
    await db.query('CREATE DATABASE moved');
    const url = new URL(postgres.url);
    url.pathname = '/moved';
    const dataDir = tempDir();
    const alone = await startTestServer({ dataDir });
    const token = await alone.token('mover');
    await alone.stop({ keepData: true });
    assert.ok(existsSync(path.join(dataDir, 'secrets.json')));

    const moved = await startTestServer({ dataDir, storage: 's3', env: { DATABASE_URL: url.href } });
    try {
      assert.equal((await fetch(`${moved.url}/v1/files/all`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
      const other = await spawn({ ...(await storageEnvFor(dataDir, 's3')), DATABASE_URL: url.href });
      assert.equal((await fetch(`${other.url}/v1/files/all`, { headers: { Authorization: `Bearer ${token}` } })).status, 200, 'a second instance uses the secrets brought along');
    } finally {
      await moved.stop();
    }
  });
});
