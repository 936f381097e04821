// Several instances end to end (docs/several-instances.md): two real server processes on one
// PostgreSQL (test/support/postgres.ts) and one Swift bucket, with clamd and a webhook receiver,
// behind Caddy started from the repository's Caddyfile with both in SL_UPSTREAM (round robin, no
// sticky sessions). Every request goes through Caddy's address; the instances are only looked at
// directly (their logs, /metrics) and the database and bucket only read, to see what happened.
// Which instance served a request is read from its access log: each request carries an
// X-Request-Id of the test's own, which the instance logs. CLUSTER_DEBUG=1 prints Caddy's and the
// instances' output at the end.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import pg from 'pg';
import * as tus from 'tus-js-client';
import { createS3Client } from '../../server/storage/s3-client.ts';
import { expectProblem } from '../helpers/problem.ts';
import { createTestBucket, type TestBucket } from '../helpers/s3.ts';
import { ROOT, SERVICE_TOKEN, spawnServer, tempDir, type SpawnedServer } from '../helpers/server.ts';
import { metadataHeader } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { metric, Receiver, uploadIdOf } from '../helpers/webhook-receiver.ts';
import { EICAR, EICAR_SIGNATURE, startClamd, type ClamdProcess } from '../support/clamd.ts';
import { POSTGRES_MISSING, startPostgres, type PostgresServer } from '../support/postgres.ts';
import { freePort, startCaddy, type CaddyProcess } from './caddy-process.ts';
import { edgeClient, newRequestId, type EdgeClient } from './cluster-https.ts';

const MiB = 1024 * 1024;
const QUOTA = 20 * MiB;
const EDGE_SECRET = 'edge-secret-cluster-test-0123456789abcdef';
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
/** The PostgreSQL locker's lease (server/locker/pg-locker.ts PG_LOCKER_DEFAULTS.leaseMs), in seconds. */
const LEASE_SECONDS = 10;
const TUS = { 'Tus-Resumable': '1.0.0' };
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

interface Instance {
  name: 'a' | 'b';
  dataDir: string;
  server: SpawnedServer;
}

/** One request a tus-js-client upload made, and what answered it. */
interface Sent {
  method: string;
  id: string;
  status?: number;
  /** The answer's body when it was an error. */
  problem?: string;
}

describe('two instances behind Caddy round robin, on one PostgreSQL and one bucket', { skip: POSTGRES_MISSING }, () => {
  let postgres: PostgresServer;
  let bucket: TestBucket;
  let clamd: ClamdProcess;
  let caddy: CaddyProcess;
  let edge: EdgeClient;
  let db: pg.Client;
  const receiver = new Receiver();
  const instances: Instance[] = [];
  const tokens = new Map<string, string>();

  before(async () => {
    const httpsPort = await freePort();
    [postgres, bucket, clamd] = await Promise.all([startPostgres(), createTestBucket(), startClamd({ streamMaxLength: '64M' }), receiver.listen()]);
    const env = {
      ...bucket.env,
      DATABASE_URL: postgres.url,
      PUBLIC_URL: `https://localhost:${httpsPort}`,
      EDGE_SECRET,
      QUOTA_DEFAULT_BYTES: String(QUOTA),
      WEBHOOK_URLS: receiver.url,
      WEBHOOK_SECRET,
      WEBHOOK_RETRY_MAX_SECONDS: '1',
      ...clamd.env,
      SCAN_RETRY_MAX_SECONDS: '1',
    };
    // No secrets given: both use the ones generated once in the database (docs/several-instances.md).
    for (const name of ['a', 'b'] as const) {
      const dataDir = tempDir();
      instances.push({ name, dataDir, server: await spawnServer(dataDir, env) });
    }
    caddyPort = httpsPort;
    await startEdge();
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
  });
  after(async () => {
    if (process.env.CLUSTER_DEBUG) console.log(caddy?.output(), instances.map((i) => i.server.output()).join('\n----\n'));
    edge?.close();
    await db?.end();
    await caddy?.stop();
    for (const { server, dataDir } of instances) {
      await server.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
    await clamd?.dispose();
    await receiver.close();
    await postgres?.stop();
  });

  let caddyPort: number;
  /** Caddy in front of both instances, and a client trusting its CA (a new one on every start). */
  async function startEdge(): Promise<void> {
    caddy = await startCaddy({
      httpsPort: caddyPort,
      upstream: instances.map((i) => new URL(i.server.url).host).join(' '),
      dataDir: instances[0]!.dataDir,
      edgeSecret: EDGE_SECRET,
    });
    edge = edgeClient(caddy.ca);
  }

  const api = (pathAndQuery: string) => `${caddy.origin}${pathAndQuery}`;
  /** Caddy's error log lines, for a failure message (a 502 is Caddy's own answer). */
  const caddyErrors = () => caddy.output().split('\n').filter((line) => line.includes('"level":"error"')).join('\n');

  async function auth(user: string): Promise<Record<string, string>> {
    let token = tokens.get(user);
    if (!token) {
      const res = await edge.request(api(`/v1/files/generate-token?user_id=${user}`), { method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN } });
      assert.equal(res.status, 200, await res.clone().text());
      token = ((await res.json()) as { token: string }).token;
      tokens.set(user, token);
    }
    return { Authorization: `Bearer ${token}` };
  }

  /** The instance whose access log has the request (its line is written once the answer is out). */
  function servedBy(requestId: string): Promise<Instance> {
    const needle = `"request_id":"${requestId}"`;
    return until(`the access log line of ${requestId}`, () =>
      instances.find((i) => i.server.output().split('\n').some((line) => line.includes(needle) && line.includes('"msg":"request"'))));
  }

  async function metricOf(instance: Instance, name: string): Promise<number> {
    return metric(instance.server.url, name);
  }

  /**
   * A tus-js-client upload through Caddy, each of its requests tagged with an X-Request-Id and
   * recorded with its answer.
   */
  function tusThroughEdge(data: Buffer, options: { headers: Record<string, string>; chunkSize: number; filename: string; retryDelays?: number[]; httpStack?: tus.HttpStack }) {
    const sent: Sent[] = [];
    const done = new Promise<{ url: string; body: string; fileKey: string }>((resolve, reject) => {
      const upload: tus.Upload = new tus.Upload(data, {
        endpoint: api('/v1/uploads'),
        headers: options.headers,
        metadata: { filename: options.filename },
        chunkSize: options.chunkSize,
        retryDelays: options.retryDelays ?? [],
        storeFingerprintForResuming: false,
        httpStack: options.httpStack ?? edge.tusStack(),
        onBeforeRequest: (req) => {
          const id = newRequestId(`tus-${req.getMethod().toLowerCase()}`);
          req.setHeader('X-Request-Id', id);
          sent.push({ method: req.getMethod(), id });
        },
        onAfterResponse: (req, res) => {
          const entry = sent.find((s) => s.id === req.getHeader('X-Request-Id'));
          if (!entry) return;
          entry.status = res.getStatus();
          if (entry.status >= 400) entry.problem = res.getBody();
        },
        onError: reject,
        onSuccess: ({ lastResponse }) => resolve({ url: upload.url!, body: lastResponse.getBody(), fileKey: lastResponse.getHeader('X-File-Key')! }),
      });
      upload.start();
    });
    return { sent, done };
  }

  /** The bytes of a finished file through a signed link, once its scan let it be served. */
  async function download(user: string, key: string): Promise<Buffer> {
    const headers = await auth(user);
    const signed = await edge.request(api(`/v1/files/signed-url?key=${encodeURIComponent(key)}`), { headers });
    assert.equal(signed.status, 200);
    const link = ((await signed.json()) as { url: string }).url;
    assert.ok(link.startsWith(caddy.origin), `the link points at Caddy: ${link}`);
    // 409 scan_pending until an instance's worker has scanned it (docs/operations.md).
    const got = await until(`${key} served`, async () => {
      const res = await edge.request(link);
      if (res.status === 409) return false;
      return res;
    });
    assert.equal(got.status, 200, await got.clone().text());
    return Buffer.from(await got.arrayBuffer());
  }

  async function usage(user: string): Promise<{ used_bytes: number; reserved_bytes: number; quota_bytes: number }> {
    const res = await edge.request(api('/v1/usage'), { headers: await auth(user) });
    assert.equal(res.status, 200);
    return (await res.json()) as { used_bytes: number; reserved_bytes: number; quota_bytes: number };
  }

  async function bucketKeys(): Promise<string[]> {
    const s3 = createS3Client(bucket);
    try {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket.bucket, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.NextContinuationToken;
      } while (token);
      return keys;
    } finally {
      s3.destroy();
    }
  }

  test('tus-js-client uploads in several PATCHes alternate between the instances and finish with the right SHA-256', async () => {
    const headers = await auth('alternating');
    const files = [randomBytes(5 * MiB + 17), randomBytes(2 * MiB + 5)];
    for (const [n, data] of files.entries()) {
      const { sent, done } = tusThroughEdge(data, { headers, chunkSize: MiB, filename: `alt-${n}.bin` });
      const result = await done;
      const record = JSON.parse(result.body) as { sha256: string; size: number; key: string };
      assert.equal(record.sha256, sha256(data));
      assert.equal(record.size, data.length);
      const row = (await db.query<{ sha256: string; size: string }>('SELECT sha256, size FROM files WHERE key = $1', [result.fileKey])).rows[0];
      assert.equal(row?.sha256, sha256(data), 'the file record in PostgreSQL');
      assert.equal(Number(row?.size), data.length);
      assert.ok((await download('alternating', result.fileKey)).equals(data), 'the bytes through a signed link');

      // The POST and every PATCH of this upload, in order, and who served each.
      assert.ok(sent.length >= Math.ceil(data.length / MiB) + 1, `requests: ${sent.map((s) => s.method).join(' ')}`);
      const by = await Promise.all(sent.map((s) => servedBy(s.id)));
      const names = by.map((i) => i.name);
      assert.deepEqual(new Set(names), new Set(['a', 'b']), `served by ${names.join('')}`);
      const switches = names.filter((name, i) => i > 0 && name !== names[i - 1]).length;
      // Round robin with nothing else in flight: every request goes to the other instance.
      assert.equal(switches, names.length - 1, `consecutive requests on different instances: ${names.join('')}`);
    }
  });

  test('12 parallel 3 MiB creations for one user with a 20 MiB quota, over both instances: exactly 6 succeed', async () => {
    const headers = await auth('quota');
    const data = randomBytes(3 * MiB);
    // Creation, then the bytes (tus "creation" + PATCH): the quota is decided at creation, which
    // reserves the whole Upload-Length. (A refusal of creation-with-upload, whose body the server
    // does not read, is test/edge/caddy-refusal.test.ts.)
    const answers = await Promise.all(Array.from({ length: 12 }, (_, n) =>
      edge.request(api('/v1/uploads'), {
        method: 'POST',
        headers: { ...TUS, ...headers, 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ filename: `q-${n}.bin` }) },
      })));
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(6).fill(201), ...Array(6).fill(413)], `statuses ${statuses.join(', ')}\n${statuses.includes(502) ? caddyErrors() : ''}`);
    for (const res of answers.filter((r) => r.status === 413)) await expectProblem(res, 413, 'quota_exceeded', 'creation past the quota', 'POST');
    const finished = await Promise.all(answers.filter((r) => r.status === 201).map((r) =>
      edge.request(r.headers.get('location')!, {
        method: 'PATCH',
        headers: { ...TUS, ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: data,
      })));
    const keys: string[] = [];
    for (const res of finished) {
      assert.equal(res.status, 200, await res.clone().text());
      const record = (await res.json()) as { sha256: string; key: string };
      assert.equal(record.sha256, sha256(data));
      keys.push(record.key);
    }
    const by = await Promise.all(answers.map((r) => servedBy(r.requestId)));
    assert.deepEqual(new Set(by.map((i) => i.name)), new Set(['a', 'b']), 'both instances took creations');
    const patchedBy = await Promise.all(finished.map((r) => servedBy(r.requestId)));
    assert.deepEqual(new Set(patchedBy.map((i) => i.name)), new Set(['a', 'b']), 'both instances took the bytes');

    assert.deepEqual(await usage('quota'), { used_bytes: 6 * data.length, reserved_bytes: 0, quota_bytes: QUOTA });
    // Nothing orphaned: no unfinished upload left, six ready files, and in the bucket only their bytes.
    assert.equal((await db.query("SELECT 1 FROM uploads WHERE user_id = 'quota'")).rowCount, 0);
    const rows = (await db.query<{ key: string; state: string }>("SELECT key, state FROM files WHERE user_id = 'quota' ORDER BY key")).rows;
    assert.deepEqual(rows, [...keys].sort().map((key) => ({ key, state: 'ready' })));
    assert.deepEqual((await bucketKeys()).filter((k) => k.startsWith('users/quota/')).sort(), [...keys].sort());
    assert.equal(await metricOf(instances[0]!, 'sl_quota_rejections_total') + await metricOf(instances[1]!, 'sl_quota_rejections_total'), 6);
  });

  test('two PATCHes racing on one upload at the same offset, one on each instance, never corrupt it', async () => {
    const headers = await auth('racing');
    const data = randomBytes(6 * MiB);
    const created = await edge.request(api('/v1/uploads'), {
      method: 'POST',
      headers: { ...TUS, ...headers, 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ filename: 'race.bin' }) },
    });
    assert.equal(created.status, 201);
    const url = created.headers.get('location')!;
    const patchHeaders = { ...TUS, ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
    // Both bodies flow in 256 KiB pieces; the second request starts once the first is streaming
    // into an instance, so both are in flight at once.
    async function* pieces(): AsyncGenerator<Buffer> {
      for (let at = 0; at < data.length; at += 256 * 1024) yield data.subarray(at, at + 256 * 1024);
    }
    const first = edge.request(url, { method: 'PATCH', headers: patchHeaders, body: pieces() });
    await until('the first PATCH is streaming', async () =>
      (await Promise.all(instances.map((i) => metricOf(i, 'sl_uploads_receiving')))).some((n) => n >= 1));
    const second = edge.request(url, { method: 'PATCH', headers: patchHeaders, body: pieces() });
    const answers = await Promise.all([first, second]);
    const [byFirst, bySecond] = await Promise.all(answers.map((r) => servedBy(r.requestId)));
    assert.notEqual(byFirst!.name, bySecond!.name, 'the two PATCHes went to different instances');

    // What tus allows (docs/api.md, "One writer at a time"): a request asked to stop keeps the bytes
    // it stored and answers their offset (204), or the whole body (200); the request that then finds
    // the offset moved answers 409 offset_mismatch; one that cannot get the lock in time, 423.
    for (const res of answers) {
      if (res.status === 409) await expectProblem(res.clone() as Response, 409, 'offset_mismatch', 'the PATCH that lost the race', 'PATCH');
      else if (res.status === 423) await expectProblem(res.clone() as Response, 423, 'upload_locked', 'the PATCH that lost the race', 'PATCH');
      else assert.ok(res.status === 204 || res.status === 200, `a racing PATCH answered ${res.status}: ${await res.clone().text()}\n${caddyErrors()}`);
    }
    // Both started at offset 0, so whichever went second could only store bytes if the first stored
    // none: what the two answers say they stored adds up to at most the file.
    const stored = answers.map((r) => (r.status === 200 ? data.length : r.status === 204 ? Number(r.headers.get('upload-offset')) : 0));
    assert.ok(stored[0]! + stored[1]! <= data.length, `both PATCHes say they stored bytes: ${answers.map((r) => r.status).join(', ')}`);
    // The client then resumes from the offset the server reports, and the file is exactly the data.
    const head = await edge.request(url, { method: 'HEAD', headers: { ...TUS, ...headers } });
    assert.equal(head.status, 200);
    const offset = Number(head.headers.get('upload-offset'));
    let fileKey = head.headers.get('x-file-key');
    if (offset < data.length) {
      assert.equal(fileKey, null);
      const rest = await edge.request(url, { method: 'PATCH', headers: { ...patchHeaders, 'Upload-Offset': String(offset) }, body: data.subarray(offset) });
      assert.equal(rest.status, 200, await rest.clone().text());
      fileKey = rest.headers.get('x-file-key');
    }
    assert.ok(fileKey);
    const row = (await db.query<{ sha256: string }>('SELECT sha256 FROM files WHERE key = $1', [fileKey])).rows[0];
    assert.equal(row?.sha256, sha256(data));
    assert.ok((await download('racing', fileKey)).equals(data));
    assert.deepEqual(await usage('racing'), { used_bytes: data.length, reserved_bytes: 0, quota_bytes: QUOTA });
  });

  test('an infected file is scanned once, by one instance, and quarantined', async () => {
    const headers = await auth('infected');
    const { done } = tusThroughEdge(Buffer.from(EICAR, 'latin1'), { headers, chunkSize: MiB, filename: 'eicar.txt' });
    const key = (await done).fileKey;
    const record = await until(`${key} scanned`, async () => {
      const res = await edge.request(api(`/v1/files/metadata/${encodeURIComponent(key)}`), { headers });
      const body = (await res.json()) as { scan_status: string; scan_signature: string | null };
      return body.scan_status === 'infected' && body;
    });
    assert.equal(record.scan_signature, EICAR_SIGNATURE);
    // Quarantined (docs/operations.md, "Virus scanning"): the record stays, its bytes are never served.
    const signed = await edge.request(api(`/v1/files/signed-url?key=${encodeURIComponent(key)}`), { headers });
    const link = ((await signed.json()) as { url: string }).url;
    await expectProblem(await edge.request(link), 403, 'infected', 'the infected file');
    assert.equal((await db.query('SELECT 1 FROM scan_jobs WHERE key = $1', [key])).rowCount, 0, 'its scan job is done');

    // One scan in all: one verdict among both instances' counters, one detection in clamd's log,
    // one file.scanned event.
    const scanned = await until('the file.scanned event', () => {
      const events = receiver.forUpload(uploadIdOf(key)).filter((e) => e.type === 'file.scanned');
      return events.length > 0 && events; // an empty list is truthy: wait for the first event
    });
    assert.equal(scanned.length, 1);
    const infected = await Promise.all(instances.map((i) => metricOf(i, 'sl_scans_total{verdict="infected"}')));
    assert.equal(infected[0]! + infected[1]!, 1, `infected verdicts per instance: ${infected.join(', ')}`);
    const clamdLog = readFileSync(path.join(path.dirname(clamd.socket), 'clamd.log'), 'utf8');
    assert.equal(clamdLog.split('\n').filter((line) => line.includes(`${EICAR_SIGNATURE} FOUND`)).length, 1, clamdLog);
  });

  test('the webhook receiver gets every event exactly once, sent by both instances', async () => {
    await until('every delivery made', async () =>
      (await db.query("SELECT 1 FROM webhook_deliveries WHERE state <> 'delivered'")).rowCount === 0);
    const events = (await db.query<{ event_id: string }>('SELECT event_id FROM webhook_events ORDER BY id')).rows.map((r) => r.event_id);
    assert.ok(events.length >= 20, `events: ${events.length}`);
    const received = receiver.requests.map((r) => r.id);
    const twice = received.filter((id, i) => received.indexOf(id) !== i);
    assert.deepEqual(twice, [], 'no event received twice');
    assert.deepEqual([...received].sort(), [...events].sort(), 'every event received');
    const delivered = await Promise.all(instances.map((i) => metricOf(i, 'sl_webhook_deliveries_total{outcome="delivered"}')));
    assert.ok(delivered.every((n) => n > 0), `deliveries per instance: ${delivered.join(', ')}`);
  });

  test('an instance killed (SIGKILL) mid-PATCH: the upload resumes on the other and finishes', async () => {
    // A fresh Caddy: what this case sees of the instances' health is what the kill does, not
    // what Caddy's health checks saw in the cases before.
    edge.close();
    await caddy.stop();
    await startEdge();
    const headers = await auth('killed');
    const data = randomBytes(10 * MiB + 3);
    // tus-js-client's second PATCH sends 1 MiB, then waits for the test to let it go on.
    let reached!: () => void;
    const holding = new Promise<void>((resolve) => (reached = resolve));
    let letGo!: () => void;
    const released = new Promise<void>((resolve) => (letGo = resolve));
    const stack = holdingStack(edge.tusStack(), 2, MiB, reached, released);
    const { sent, done } = tusThroughEdge(data, { headers, chunkSize: 3 * MiB, filename: 'killed.bin', retryDelays: [0, 200, 500, 1000, 1000, 1000], httpStack: stack });
    done.catch(() => {});
    await holding;
    const victim = await until('the instance receiving the held PATCH', async () => {
      for (const i of instances) if ((await metricOf(i, 'sl_uploads_receiving')) >= 1) return i;
      return undefined;
    });
    const survivor = instances.find((i) => i !== victim)!;
    const uploadId = (await db.query<{ id: string }>("SELECT id FROM uploads WHERE user_id = 'killed'")).rows[0]!.id;
    const lock = await until('the held PATCH holds the lock', async () =>
      (await db.query<{ instance_id: string; left: number }>(
        'SELECT instance_id, extract(epoch FROM expires_at - now())::float AS left FROM upload_locks WHERE upload_id = $1 AND expires_at > now()', [uploadId])).rows[0]);
    // Its lease is the bound on how long the dead instance's lock can stand in the way.
    assert.ok(lock.left <= LEASE_SECONDS, `lease left ${lock.left} s`);
    const sentBeforeKill = sent.length;
    assert.equal(await victim.server.kill('SIGKILL'), null);
    letGo();

    const result = await done.catch((error: Error) => assert.fail(`${error.message}\nrequests: ${JSON.stringify(sent)}\n${caddyErrors()}`));
    const record = JSON.parse(result.body) as { sha256: string; size: number };
    assert.equal(record.sha256, sha256(data));
    assert.equal(record.size, data.length);
    // After the kill: the held PATCH's 502 from Caddy (or a cut connection), then only answers from
    // the survivor: no request was refused because of the dead instance's lock (423, or 500 for a
    // lock wait that ran out), and the HEAD that resumed got the lock once the lease had ended.
    const after = sent.slice(sentBeforeKill);
    const resumed = sent.filter((s) => s.method === 'HEAD' && s.status === 200);
    assert.ok(resumed.length >= 1, `requests: ${JSON.stringify(sent)}`);
    for (const s of after) assert.ok(s.status === undefined || [200, 204, 502].includes(s.status), `after the kill: ${JSON.stringify(s)}`);
    for (const s of after.filter((s) => s.status === 200 || s.status === 204)) assert.equal((await servedBy(s.id)).name, survivor.name);
    assert.ok((await download('killed', result.fileKey)).equals(data), 'the bytes through a signed link');

    // No leaked reservation: every user's usage is exactly their files.
    for (const user of ['alternating', 'quota', 'racing', 'infected', 'killed']) {
      const files = (await db.query<{ total: string }>("SELECT coalesce(sum(size), 0) AS total FROM files WHERE user_id = $1 AND state = 'ready'", [user])).rows[0]!;
      assert.deepEqual(await usage(user), { used_bytes: Number(files.total), reserved_bytes: 0, quota_bytes: QUOTA }, user);
    }
    assert.equal((await db.query('SELECT 1 FROM uploads')).rowCount, 0, 'no unfinished upload left');
    // The bucket holds the finished files and nothing else.
    const keys = (await db.query<{ key: string }>('SELECT key FROM files')).rows.map((r) => r.key).sort();
    assert.deepEqual((await bucketKeys()).sort(), keys);
    // And npm run check-storage finds every record's bytes.
    const check = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/check-storage-cli.ts'), '--json'], {
      cwd: ROOT,
      env: { ...process.env, ...bucket.env, DATABASE_URL: postgres.url, DATA_DIR: tempDir() },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.deepEqual((JSON.parse(check.stdout) as { findings: unknown[] }).findings, []);
  });
});

/**
 * tus-js-client's HTTP stack, except that its `nth` PATCH (1-based) sends `afterBytes` of its body,
 * calls `reached`, and sends the rest only once `release` resolves: a PATCH caught mid-stream.
 */
function holdingStack(inner: tus.HttpStack, nth: number, afterBytes: number, reached: () => void, release: Promise<void>): tus.HttpStack {
  let patches = 0;
  return {
    getName: () => 'holding',
    createRequest(method, url) {
      const req = inner.createRequest(method, url);
      if (method !== 'PATCH' || ++patches !== nth) return req;
      const send = req.send.bind(req);
      req.send = (body: Buffer) => {
        async function* held(): AsyncGenerator<Buffer> {
          yield Buffer.from(body.subarray(0, afterBytes));
          reached();
          await release;
          yield Buffer.from(body.subarray(afterBytes));
        }
        return send(Readable.from(held()));
      };
      return req;
    },
  };
}
