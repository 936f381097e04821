// Several instances behind Caddy (docs/several-instances.md): the real server (`npm run build`'s
// dist/server/main.js) on one PostgreSQL and one Swift bucket, behind Caddy started from the
// repository's Caddyfile over HTTPS, measured with two instances in SL_UPSTREAM against one
// instance, in the same run and on the same database, bucket and processes (instance A alone
// behind one Caddy, A and B behind another; rounds alternate).
//   node --import tsx bench/cluster.ts [--count 100] [--concurrency 16] [--size 10KiB] [--rounds 3] [--handovers 10]
// Two figures:
// - small uploads/s: `--size` creation-with-upload POSTs (the whole file in the request that
//   creates it), `--concurrency` at a time on kept-alive HTTPS connections; every answer checked
//   (201, the record's SHA-256). Server CPU is summed over the instances.
// - lock hand-over: a PATCH sends 64 KiB and stalls, holding its upload's lock; a HEAD for that
//   upload then goes through Caddy: the time until it is answered, i.e. until the stalled PATCH was
//   made to let go and the HEAD's instance took the lock. With two instances only HEADs that
//   landed on the other instance count (read from each instance's /metrics); with one it is
//   in-process. The HEAD of an upload nobody holds is given beside it.
// Prints a table and one JSON line (`{"bench":"cluster",…}`).
import { randomBytes, createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { createS3Client } from '../server/storage/s3-client.ts';
import { freePort, startCaddy, type CaddyProcess } from '../test/edge/caddy-process.ts';
import { startPostgres } from '../test/support/postgres.ts';
import { startSwift } from '../test/support/swift.ts';
import { describeMachine, loadAverage } from './lib/machine.ts';
import { readCpuSeconds } from './lib/proc-stats.ts';
import { killAllSync, startTarget, type Running } from './lib/targets.ts';
import { median, parseSize } from './lib/units.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: {
  count: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '16' },
  size: { type: 'string', default: '10KiB' },
  rounds: { type: 'string', default: '3' },
  handovers: { type: 'string', default: '10' },
} });
const COUNT = Number(values.count);
const CONCURRENCY = Number(values.concurrency);
const SIZE = parseSize(values.size!);
const ROUNDS = Number(values.rounds);
const HANDOVERS = Number(values.handovers);
const SERVICE_TOKEN = randomBytes(24).toString('base64url');
const EDGE_SECRET = randomBytes(24).toString('base64url');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

type Setup = { name: 'one' | 'two'; caddy: CaddyProcess; agent: https.Agent; instances: Running[] };

const started = Date.now();
const postgres = await startPostgres();
const swift = await startSwift();
const stops: Array<() => Promise<void>> = [async () => swift.stop(), async () => postgres.stop()];
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllSync();
    void Promise.all(stops.map((stop) => stop().catch(() => {}))).finally(() => process.exit(130));
  });
}
try {
  const bucket = `bench-${randomBytes(4).toString('hex')}`;
  const s3 = createS3Client({ ...swift, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
  const env = {
    DATABASE_URL: postgres.url,
    STORAGE: 's3',
    S3_BUCKET: bucket,
    S3_ENDPOINT: swift.endpoint,
    S3_REGION: swift.region,
    S3_ACCESS_KEY_ID: swift.accessKeyId,
    S3_SECRET_ACCESS_KEY: swift.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    AUTH_SERVICE_TOKEN: SERVICE_TOKEN,
    EDGE_SECRET,
  };
  // Ports first: PUBLIC_URL names Caddy's address. Each setup has its own Caddy, and instance A is
  // in both: its Locations name the second one, and the hand-over rewrites them to its setup's.
  const ports = { one: await freePort(), two: await freePort() };
  const a = await startTarget(ROOT, 'real', { env: { ...env, PUBLIC_URL: `https://localhost:${ports.two}` } });
  stops.unshift(a.stop);
  const b = await startTarget(ROOT, 'real', { env: { ...env, PUBLIC_URL: `https://localhost:${ports.two}` } });
  stops.unshift(b.stop);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bench-cluster-caddy-'));
  stops.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  const setups: Setup[] = [];
  for (const [name, instances] of [['one', [a]], ['two', [a, b]]] as const) {
    const caddy = await startCaddy({ httpsPort: ports[name], upstream: instances.map((i) => new URL(i.url).host).join(' '), dataDir, edgeSecret: EDGE_SECRET });
    stops.unshift(caddy.stop);
    setups.push({ name, caddy, agent: new https.Agent({ ca: caddy.ca, keepAlive: true, maxSockets: CONCURRENCY }), instances: [...instances] });
  }
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  stops.unshift(() => db.end());

  const results: Record<Setup['name'], { uploadsPerS: number[]; cpuMsPerUpload: number[]; handoverMs: number[]; freeHeadMs: number[] }> = {
    one: { uploadsPerS: [], cpuMsPerUpload: [], handoverMs: [], freeHeadMs: [] },
    two: { uploadsPerS: [], cpuMsPerUpload: [], handoverMs: [], freeHeadMs: [] },
  };
  console.error(`instances ${a.url} ${b.url}; Caddy ${setups.map((s) => s.caddy.origin).join(' ')}`);
  // A warm-up round on each (connections, JIT, the user's totals row), not counted.
  for (const setup of setups) await smallUploads(setup, Math.min(50, COUNT), `warm-${setup.name}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const setup of round % 2 === 0 ? setups : [...setups].reverse()) {
      const cpuBefore = setup.instances.map((i) => readCpuSeconds(i.pid));
      const t0 = performance.now();
      const done = await smallUploads(setup, COUNT, `${setup.name}-${round}`);
      const ms = performance.now() - t0;
      const cpuS = setup.instances.reduce((sum, i, n) => sum + readCpuSeconds(i.pid) - cpuBefore[n]!, 0);
      results[setup.name].uploadsPerS.push(done / (ms / 1000));
      results[setup.name].cpuMsPerUpload.push((cpuS * 1000) / done);
      console.error(`round ${round} ${setup.name}: ${(done / (ms / 1000)).toFixed(0)} uploads/s (load ${loadAverage()})`);
    }
  }
  // With two instances only the hand-overs from one instance to the other count (Caddy's round
  // robin for requests with a body and for the others are two turns: the HEAD may land on either).
  for (let n = 0; n < HANDOVERS * 6 && setups.some((s) => results[s.name].handoverMs.length < HANDOVERS); n++) {
    for (const setup of n % 2 === 0 ? setups : [...setups].reverse()) {
      if (results[setup.name].handoverMs.length >= HANDOVERS) continue;
      const { handoverMs, freeHeadMs, across } = await handover(setup, db);
      console.error(`hand-over ${setup.name}: ${handoverMs.toFixed(0)} ms${across ? ' (across)' : ''}`);
      if (setup.instances.length > 1 && !across) continue;
      results[setup.name].handoverMs.push(handoverMs);
      results[setup.name].freeHeadMs.push(freeHeadMs);
    }
  }

  const m = (name: Setup['name'], key: keyof (typeof results)['one']) => median(results[name][key]);
  const max = (name: Setup['name'], key: keyof (typeof results)['one']) => Math.max(...results[name][key]);
  const rows = [
    ['', 'one instance', 'two instances', 'two / one'],
    [`${values.size} uploads/s (median of ${ROUNDS})`, m('one', 'uploadsPerS').toFixed(0), m('two', 'uploadsPerS').toFixed(0), (m('two', 'uploadsPerS') / m('one', 'uploadsPerS')).toFixed(2)],
    ['server CPU ms per upload (all instances)', m('one', 'cpuMsPerUpload').toFixed(2), m('two', 'cpuMsPerUpload').toFixed(2), (m('two', 'cpuMsPerUpload') / m('one', 'cpuMsPerUpload')).toFixed(2)],
    [`lock hand-over ms, median (max) of ${HANDOVERS}`, `${m('one', 'handoverMs').toFixed(0)} (${max('one', 'handoverMs').toFixed(0)})`, `${m('two', 'handoverMs').toFixed(0)} (${max('two', 'handoverMs').toFixed(0)})`, (m('two', 'handoverMs') / m('one', 'handoverMs')).toFixed(2)],
    ['HEAD of an upload nobody holds, ms (median)', m('one', 'freeHeadMs').toFixed(1), m('two', 'freeHeadMs').toFixed(1), (m('two', 'freeHeadMs') / m('one', 'freeHeadMs')).toFixed(2)],
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log(rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n'));
  const machine = describeMachine();
  console.log(`${machine.cpu}, ${machine.cores} cores, load ${loadAverage()}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(JSON.stringify({ bench: 'cluster', size: SIZE, count: COUNT, concurrency: CONCURRENCY, rounds: ROUNDS, results }));
} finally {
  for (const stop of stops) await stop().catch((error: unknown) => console.error('stopping:', error));
}

/** `count` creation-with-upload POSTs, CONCURRENCY at a time; every answer checked. Returns how many. */
async function smallUploads(setup: Setup, count: number, user: string): Promise<number> {
  const data = randomBytes(SIZE);
  const sha256 = createHash('sha256').update(data).digest('hex');
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const res = await request(setup, `${setup.caddy.origin}/v1/uploads`, 'POST', {
        'Tus-Resumable': '1.0.0',
        'X-Service-Token': SERVICE_TOKEN,
        'Upload-Length': String(SIZE),
        'Upload-Metadata': `filename ${b64(`f-${i}.bin`)},user_id ${b64(user)}`,
        'Content-Type': 'application/offset+octet-stream',
      }, data);
      if (res.status !== 201 || (JSON.parse(res.body) as { sha256?: string }).sha256 !== sha256) {
        throw new Error(`upload ${i} on ${setup.name}: ${res.status} ${res.body.slice(0, 300)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return count;
}

/**
 * A PATCH that sends 64 KiB and stalls holds the upload's lock (its row is in PostgreSQL); a HEAD
 * through Caddy then goes to the next instance in turn. Returns how long that HEAD took, and a
 * HEAD of the same upload once nobody holds it.
 */
async function handover(setup: Setup, db: pg.Client): Promise<{ handoverMs: number; freeHeadMs: number; across: boolean }> {
  const tus = { 'Tus-Resumable': '1.0.0', 'X-Service-Token': SERVICE_TOKEN };
  const created = await request(setup, `${setup.caddy.origin}/v1/uploads`, 'POST', {
    ...tus, 'Upload-Length': String(1024 * 1024), 'Upload-Metadata': `filename ${b64('held.bin')},user_id ${b64(`handover-${setup.name}`)}`,
  });
  if (created.status !== 201) throw new Error(`creation: ${created.status} ${created.body}`);
  // Location is on the PUBLIC_URL the instance was given (one Caddy); this setup's Caddy serves the same path.
  const url = `${setup.caddy.origin}${new URL(created.headers.location as string).pathname}`;
  const uploadId = url.split('/').pop()!;
  const stalled = https.request(url, {
    method: 'PATCH',
    agent: false,
    ca: setup.caddy.ca,
    headers: { ...tus, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(1024 * 1024) },
  });
  let failed: Error | undefined;
  const answered = new Promise<void>((resolve) => {
    stalled.on('response', (res) => res.resume().on('end', resolve).on('error', resolve));
    stalled.on('error', (error) => {
      failed ??= error;
      resolve();
    });
  });
  stalled.write(randomBytes(64 * 1024));
  for (;;) {
    if (failed) throw new Error(`the stalled PATCH failed: ${failed.message}`);
    const held = await db.query('SELECT 1 FROM upload_locks WHERE upload_id = $1 AND expires_at > now()', [uploadId]);
    if (held.rowCount === 1) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const patchedOn = await instanceWhere(setup, async (i) => (await metric(i, 'sl_uploads_receiving')) >= 1);
  const headsBefore = await Promise.all(setup.instances.map((i) => metric(i, 'sl_http_requests_total{method="HEAD"')));
  const t0 = performance.now();
  const head = await request(setup, url, 'HEAD', tus);
  const handoverMs = performance.now() - t0;
  if (head.status !== 200) throw new Error(`HEAD during the hand-over: ${head.status}`);
  const headOn = await instanceWhere(setup, async (i, n) => (await metric(i, 'sl_http_requests_total{method="HEAD"')) > headsBefore[n]!);
  stalled.destroy();
  await answered;
  // The lock is free once the stalled PATCH has ended on its instance.
  for (;;) {
    const held = await db.query('SELECT 1 FROM upload_locks WHERE upload_id = $1 AND expires_at > now()', [uploadId]);
    if (held.rowCount === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const t1 = performance.now();
  const free = await request(setup, url, 'HEAD', tus);
  const freeHeadMs = performance.now() - t1;
  if (free.status !== 200) throw new Error(`HEAD of a free upload: ${free.status}`);
  await request(setup, url, 'DELETE', tus);
  return { handoverMs, freeHeadMs, across: patchedOn !== headOn };
}

/** The first instance for which `probe` holds, asked again until one does. */
async function instanceWhere(setup: Setup, probe: (instance: Running, n: number) => Promise<boolean>): Promise<Running> {
  for (;;) {
    for (const [n, instance] of setup.instances.entries()) if (await probe(instance, n)) return instance;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The sum of a metric's samples whose line starts with `prefix`, from the instance's own /metrics. */
async function metric(instance: Running, prefix: string): Promise<number> {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith(prefix)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

function request(setup: Setup, url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, agent: setup.agent }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
