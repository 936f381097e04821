// The download side: signed GET (whole, range, HEAD, 10 KiB) and batch ZIP of the real server
// (server/main.ts) beside a bare node:http server piping the same file (bare-download-server.ts),
// Caddy's file_server and `zip -0` doing the same work in the same run, on the same files (all
// serve the server's own DATA_DIR, so all read the same page-cached bytes); then the same on S3
// storage (a local Swift) against a bare GetObject pipe. One table, also written with the
// machine's description to bench/results/sharing.md. See bench/README.md.
//   node --import tsx bench/sharing.ts --file-size 256MiB --zip-count 4 --zip-size 16MiB --repeat 1 --duration 3 --s3-size 64MiB
import http from 'node:http';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../server/storage/s3-client.ts';
import { startSwift } from '../test/support/swift.ts';
import { caddyUnavailable, startCaddy, type Caddy } from './lib/caddy.ts';
import { runCommand } from './lib/command.ts';
import { curlDownload, curlHeads, parallelDownloads, wrk, zipStore, type Download } from './lib/download-clients.ts';
import { describeMachine, loadAverage } from './lib/machine.ts';
import { readRss, watchProcess, type Watched } from './lib/proc-stats.ts';
import { batchUrl, signedUrl, uploadForKey } from './lib/share-api.ts';
import { Figures, FIGURE_COLUMNS, type FigureSpec } from './lib/figures.ts';
import { renderMarkdown, renderText } from './lib/table.ts';
import { killAllSync, realUnavailable, startTarget, type Running } from './lib/targets.ts';
import { formatSize, mbPerSecond, mib, parseSize } from './lib/units.ts';
import { writeReport } from './lib/report.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GiB = 1024 ** 3;
const HEAD_COUNT = 2000;

const { values } = parseArgs({
  options: {
    'file-size': { type: 'string', default: '1GiB' },
    parallel: { type: 'string', default: '4' },
    'small-size': { type: 'string', default: '10KiB' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '4' },
    'zip-count': { type: 'string', default: '20' },
    'zip-size': { type: 'string', default: '50MiB' },
    repeat: { type: 'string', default: '5' },
    'load-repeat': { type: 'string', default: '3' },
    's3-size': { type: 'string', default: '256MiB' },
    's3-zip-count': { type: 'string', default: '4' },
    out: { type: 'string', default: join(ROOT, 'bench/results/sharing.md') },
  },
});
const fileSize = parseSize(values['file-size']);
const parallel = boundedInt('parallel', values.parallel, 1, 16);
const smallSize = parseSize(values['small-size']);
const duration = boundedInt('duration', values.duration, 1, 60);
const connections = boundedInt('connections', values.connections, 1, 64);
const zipCount = boundedInt('zip-count', values['zip-count'], 1, 200);
const zipSize = parseSize(values['zip-size']);
const repeat = boundedInt('repeat', values.repeat, 1, 10);
const loadRepeat = boundedInt('load-repeat', values['load-repeat'], 1, 10);
/** 0 leaves the S3 part out. */
const s3Size = values['s3-size'] === '0' ? 0 : parseSize(values['s3-size']);
const s3ZipCount = boundedInt('s3-zip-count', values['s3-zip-count'], 1, 200);

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const notes: string[] = [];
/** Every measured figure, by name: `<figure>.s` for Stream-Line, `<figure>.b` (or another name) for its baseline. */
const figures = new Figures();
/** BENCH_VERBOSE=1 prints every sample as it is taken (the table shows medians). */
const verbose = process.env.BENCH_VERBOSE === '1';
const record = (name: string, v: number): void => {
  if (verbose) log(`  ${name} = ${v.toFixed(2)}`);
  figures.record(name, v);
};

/** s: Stream-Line's signed GET; n: the bare node:http server (bare-download-server.ts); c: Caddy. */
type Side = 's' | 'n' | 'c';
const SIDES: readonly Side[] = ['s', 'n', 'c'];
/** The 1-minute load average as each part starts: the machine is shared, so it goes in the file. */
const loads: string[] = [];
const phase = (name: string, short: string): void => {
  loads.push(`${short} ${loadAverage()}`);
  log(`${name} (load ${loadAverage()}, ${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
};
const startedAt = performance.now();

type Sides = Partial<Record<Side, string>>;

async function main(): Promise<void> {
  const machine = describeMachine();
  const loadAtStart = loadAverage();
  const missing = realUnavailable(ROOT) ?? caddyUnavailable();
  if (missing) fail(missing);
  const real = await startTarget(ROOT, 'real');
  let caddy: Caddy | undefined;
  let bare: Running | undefined;
  const scratch = await mkdtemp(join(tmpdir(), 'bench-sharing-'));
  try {
    phase(`uploading ${formatSize(fileSize)}, ${formatSize(smallSize)}, ${zipCount} × ${formatSize(zipSize)}`, 'uploads');
    const agent = new http.Agent({ keepAlive: true });
    const bigKey = await uploadForKey(real, fileSize, 'bench-big.bin', agent);
    const smallKey = await uploadForKey(real, smallSize, 'bench-small.bin', agent);
    const zipKeys: string[] = [];
    for (let i = 0; i < zipCount; i++) zipKeys.push(await uploadForKey(real, zipSize, `bench-zip-${i}.bin`, agent));
    agent.destroy();
    await runCommand('sync', []); // the uploads' writeback must not land in the timings
    caddy = await startCaddy(real.dataDir);
    bare = await startTarget(ROOT, 'bare-download', { env: { BARE_ROOT: real.dataDir } });
    notes.push(`Caddy ${caddy.version} file_server and the bare node:http server on the server's DATA_DIR: all serve the same page-cached files`);
    const caddyUrl = (key: string): string => `${caddy!.url}/${key.split('/').map(encodeURIComponent).join('/')}`;
    const bareUrl = (key: string): string => `${bare!.url}/file/${key.split('/').map(encodeURIComponent).join('/')}`;
    const big: Sides = { s: await signedUrl(real, bigKey), n: bareUrl(bigKey), c: caddyUrl(bigKey) };
    const small: Sides = { s: await signedUrl(real, smallKey), n: bareUrl(smallKey), c: caddyUrl(smallKey) };
    const pids: Sides = { s: String(real.pid), n: String(bare.pid), c: String(caddy.pid) };
    for (const side of SIDES) expectDownload(await curlDownload(small[side]!), smallSize, `warm-up ${side}`);

    phase(`${formatSize(fileSize)}: one download (whole, then a range), then ${parallel} at once`, 'large GETs');
    for (const side of SIDES) record(`idle.rss.${side}`, mib(readRss(Number(pids[side])).rss));
    await largeGets(big, pids, fileSize, 'one', SIDES);

    phase(`${formatSize(smallSize)}: wrk -t1 -c${connections} -d${duration}s; ${HEAD_COUNT} HEADs`, 'wrk');
    await smallGets(small, pids, SIDES);
    for (let i = 0; i < loadRepeat; i++) {
      for (const side of rotate(['s', 'n'], i)) {
        const [h, w] = await watched(Number(pids[side]), () => curlHeads(big[side]!, HEAD_COUNT));
        record(`head.${side}`, h.rps);
        record(`head.cpu.${side}`, (w.cpuS / h.requests) * 1e6);
      }
    }

    phase(`batch ZIP of ${zipCount} × ${formatSize(zipSize)} beside zip -0`, 'ZIP');
    const zipUrl = await batchUrl(real, zipKeys);
    const dataBytes = zipCount * zipSize;
    const outZip = join(scratch, 'out.zip');
    for (let i = 0; i < repeat; i++) {
      const runs = [
        async () => {
          const [d, w] = await watched(real.pid, () => curlDownload(zipUrl));
          if (!expectDownload(d, dataBytes, 'batch ZIP', true)) return;
          record('zip.mbps.s', mbPerSecond(dataBytes, d.ms));
          record('zip.cpu.s', w.cpuS / (dataBytes / GiB));
          record('zip.rss.s', mib(w.peakRss));
        },
        async () => {
          const z = await zipStore(real.dataDir, zipKeys, outZip);
          notes.push(...(i === 0 ? [`zip -0 archive: ${statSync(outZip).size} bytes for ${dataBytes} bytes of files`] : []));
          await rm(outZip, { force: true });
          await runCommand('sync', []); // its writeback, outside any timing
          record('zip.mbps.disk', mbPerSecond(dataBytes, z.ms));
        },
        async () => {
          const z = await zipStore(real.dataDir, zipKeys, '-');
          record('zip.mbps.null', mbPerSecond(dataBytes, z.ms));
          record('zip.cpu.null', z.cpuS / (dataBytes / GiB));
        },
      ];
      for (let k = 0; k < runs.length; k++) await runs[(i + k) % runs.length]!();
    }
  } finally {
    await caddy?.stop();
    await bare?.stop();
    await real.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  if (s3Size > 0) await s3Part();
  phase('done', 'end');
  report(machine, loadAtStart, await codeVersion());
}

/**
 * One download of the whole file, then one of its middle half (Range), per side; then `parallel`
 * whole downloads at once. `prefix` names the figures (`one`, `s3`).
 */
async function largeGets(urls: Sides, pids: Sides, size: number, prefix: string, sides: readonly Side[]): Promise<void> {
  const start = Math.floor(size / 4);
  const end = start + Math.floor(size / 2) - 1;
  const rangeBytes = end - start + 1;
  for (let i = 0; i < repeat; i++) {
    for (const side of rotate(sides, i)) {
      const pid = Number(pids[side]);
      const [d, w] = await watched(pid, () => curlDownload(urls[side]!));
      if (expectDownload(d, size, `${prefix} download, ${side}`)) {
        record(`${prefix}.mbps.${side}`, mbPerSecond(d.bytes, d.ms));
        record(`${prefix}.cpu.${side}`, w.cpuS / (d.bytes / GiB));
        record(`${prefix}.rss.${side}`, mib(w.peakRss));
      }
      const [r, rw] = await watched(pid, () => curlDownload(urls[side]!, { Range: `bytes=${start}-${end}` }));
      if (expectDownload(r, rangeBytes, `${prefix} range, ${side}`, false, 206)) {
        record(`${prefix}.range.mbps.${side}`, mbPerSecond(r.bytes, r.ms));
        record(`${prefix}.range.cpu.${side}`, rw.cpuS / (r.bytes / GiB));
      }
    }
  }
  if (prefix !== 'one') return;
  for (let i = 0; i < repeat; i++) {
    for (const side of rotate(sides, i)) {
      const [d, w] = await watched(Number(pids[side]), () => parallelDownloads(urls[side]!, parallel));
      if (!expectDownload(d, parallel * size, `${parallel} parallel, ${side}`)) continue;
      record(`par.mbps.${side}`, mbPerSecond(d.bytes, d.ms));
      record(`par.rss.${side}`, mib(w.peakRss));
    }
  }
}

async function smallGets(urls: Sides, pids: Sides, sides: readonly Side[]): Promise<void> {
  const prefix = 'rps';
  for (let i = 0; i < loadRepeat; i++) {
    for (const side of rotate(sides, i)) {
      const [l, w] = await watched(Number(pids[side]), () => wrk(urls[side]!, duration, connections));
      if (l.errors > 0) notes.push(`wrk ${side}: ${l.errors} errors or non-2xx answers of ${l.requests}`);
      record(`${prefix}.${side}`, l.rps);
      record(`${prefix}.p50.${side}`, l.p50Ms);
      record(`${prefix}.p99.${side}`, l.p99Ms);
      record(`${prefix}.cpu.${side}`, (w.cpuS / l.requests) * 1e6);
    }
  }
}

/**
 * S3 storage (a one-node Swift on loopback, test/support/swift.ts): the real server with
 * STORAGE=s3 beside the bare node:http server piping one GetObject, same bucket, same object; then a
 * batch ZIP of S3 objects, whose peak RSS must stay near a single download's.
 */
async function s3Part(): Promise<void> {
  phase(`S3 (Swift): ${formatSize(s3Size)} signed GET and a ZIP of ${s3ZipCount} × ${formatSize(zipSize)}`, 'S3');
  const swift = await startSwift();
  const bucket = 'bench-sharing';
  const s3Env = {
    STORAGE: 's3', S3_BUCKET: bucket, S3_ENDPOINT: swift.endpoint, S3_REGION: swift.region,
    S3_ACCESS_KEY_ID: swift.accessKeyId, S3_SECRET_ACCESS_KEY: swift.secretAccessKey, S3_FORCE_PATH_STYLE: 'true',
  };
  let real: Running | undefined;
  let bare: Running | undefined;
  try {
    await createS3Client({ ...swift, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: bucket }));
    real = await startTarget(ROOT, 'real', { env: s3Env });
    bare = await startTarget(ROOT, 'bare-download', { env: s3Env });
    const agent = new http.Agent({ keepAlive: true });
    const key = await uploadForKey(real, s3Size, 'bench-s3.bin', agent);
    const zipKeys: string[] = [];
    for (let i = 0; i < s3ZipCount; i++) zipKeys.push(await uploadForKey(real, zipSize, `bench-s3-zip-${i}.bin`, agent));
    agent.destroy();
    const urls: Sides = { s: await signedUrl(real, key), n: `${bare.url}/s3/${key.split('/').map(encodeURIComponent).join('/')}` };
    const pids: Sides = { s: String(real.pid), n: String(bare.pid) };
    await largeGets(urls, pids, s3Size, 's3', ['s', 'n']);
    const zipUrl = await batchUrl(real, zipKeys);
    for (let i = 0; i < repeat; i++) {
      const [d, w] = await watched(real.pid, () => curlDownload(zipUrl));
      if (!expectDownload(d, s3ZipCount * zipSize, 'S3 batch ZIP', true)) continue;
      record('s3zip.mbps.s', mbPerSecond(s3ZipCount * zipSize, d.ms));
      record('s3zip.rss.s', mib(w.peakRss));
    }
  } finally {
    await bare?.stop();
    await real?.stop();
    await swift.stop();
  }
}

/** The sides in a different order on each repeat, to spread any drift of the machine over all. */
function rotate(sides: readonly Side[], i: number): Side[] {
  const k = i % sides.length;
  return [...sides.slice(k), ...sides.slice(0, k)];
}

/** The commit measured, and how many files under server/ and hooks/ differed from it. */
async function codeVersion(): Promise<string> {
  const head = await runCommand('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = await runCommand('git', ['-C', ROOT, 'status', '--porcelain', '--', 'server', 'hooks']);
  const changed = dirty.stdout.split('\n').filter(Boolean).length;
  return `${head.stdout.trim() || 'unknown'}${changed ? ` with ${changed} uncommitted files under server/ and hooks/` : ''}`;
}

const HWM_NOTE = 'the kernel refused to reset VmHWM (clear_refs): peak RSS is the largest 50 ms sample';

/** Runs `work` while watching the server `pid`: its peak RSS and CPU during that work alone. */
async function watched<T>(pid: number, work: () => Promise<T>): Promise<[T, Watched]> {
  const watch = watchProcess(pid);
  try {
    const result = await work();
    const w = watch.stop();
    if (!w.hwmReset && !notes.includes(HWM_NOTE)) notes.push(HWM_NOTE);
    return [result, w];
  } catch (error) {
    watch.stop();
    throw error;
  }
}

/** True when the answer has the expected status and bytes (at least them, for an archive). */
function expectDownload(d: Download, bytes: number, what: string, atLeast = false, status = 200): boolean {
  const ok = d.status === status && (atLeast ? d.bytes > bytes : d.bytes === bytes);
  if (!ok) notes.push(`${what}: answered ${d.status} with ${d.bytes} bytes (expected ${status} with ${atLeast ? 'more than ' : ''}${bytes}); not counted`);
  return ok;
}

function report(machine: ReturnType<typeof describeMachine>, loadAtStart: string, code: string): void {
  const big = formatSize(fileSize);
  const zips = `${zipCount} × ${formatSize(zipSize)} batch ZIP`;
  const wrkDesc = `wrk ${connections} conn., ${duration} s`;
  const s3 = formatSize(s3Size);
  const N = 'bare node:http pipe (1 MiB reads)';
  const NS3 = 'bare node:http pipe of GetObject';
  const specs: FigureSpec[] = [
    { name: `${big} signed GET, one download: MB/s`, s: 'one.mbps.s', b: 'one.mbps.n', baseline: N, digits: 0 },
    { name: `${big} signed GET, one download: server CPU, s per GiB`, s: 'one.cpu.s', b: 'one.cpu.n', baseline: N, digits: 2 },
    { name: `${big} signed GET, middle half (Range): MB/s`, s: 'one.range.mbps.s', b: 'one.range.mbps.n', baseline: N, digits: 0 },
    { name: `${big} signed GET, middle half (Range): server CPU, s per GiB`, s: 'one.range.cpu.s', b: 'one.range.cpu.n', baseline: N, digits: 2 },
    { name: `${big} signed GET, ${parallel} parallel: MB/s in all`, s: 'par.mbps.s', b: 'par.mbps.n', baseline: N, digits: 0 },
    { name: `${big} signed GET, one download: MB/s`, s: 'one.mbps.s', b: 'one.mbps.c', baseline: 'Caddy file_server', digits: 0 },
    { name: `${big} signed GET, one download: server CPU, s per GiB`, s: 'one.cpu.s', b: 'one.cpu.c', baseline: 'Caddy file_server', digits: 2 },
    { name: 'server RSS before the downloads, MiB', s: 'idle.rss.s', b: 'idle.rss.n', baseline: 'bare node:http', digits: 0 },
    { name: `${big} signed GET, one download: peak RSS, MiB`, s: 'one.rss.s', b: 'one.rss.n', baseline: 'bare node:http', digits: 0, agg: 'max' },
    { name: `${big} signed GET, ${parallel} parallel: peak RSS, MiB`, s: 'par.rss.s', b: 'par.rss.n', baseline: 'bare node:http', digits: 0, agg: 'max' },
    { name: `${formatSize(smallSize)} signed GET: requests/s (${wrkDesc})`, s: 'rps.s', b: 'rps.n', baseline: N, digits: 0 },
    { name: `${formatSize(smallSize)} signed GET: requests/s (${wrkDesc})`, s: 'rps.s', b: 'rps.c', baseline: 'Caddy file_server', digits: 0 },
    { name: `${formatSize(smallSize)} signed GET: latency p50, ms`, s: 'rps.p50.s', b: 'rps.p50.n', baseline: N, digits: 2 },
    { name: `${formatSize(smallSize)} signed GET: latency p99, ms`, s: 'rps.p99.s', b: 'rps.p99.n', baseline: N, digits: 2 },
    { name: `${formatSize(smallSize)} signed GET: server CPU per request, µs`, s: 'rps.cpu.s', b: 'rps.cpu.n', baseline: N, digits: 0 },
    { name: `${big} signed HEAD: requests/s (curl, one connection)`, s: 'head.s', b: 'head.n', baseline: N, digits: 0 },
    { name: `${big} signed HEAD: server CPU per request, µs`, s: 'head.cpu.s', b: 'head.cpu.n', baseline: N, digits: 0 },
    { name: `${zips}: MB/s of file data`, s: 'zip.mbps.s', b: 'zip.mbps.disk', baseline: 'zip -0 out.zip (disk)', digits: 0 },
    { name: `${zips}: MB/s of file data`, s: 'zip.mbps.s', b: 'zip.mbps.null', baseline: 'zip -0 - > /dev/null', digits: 0 },
    { name: `${zips}: CPU, s per GiB`, s: 'zip.cpu.s', b: 'zip.cpu.null', baseline: 'zip -0 - > /dev/null', digits: 2 },
    { name: `${zips}: server peak RSS, MiB`, s: 'zip.rss.s', b: 'one.rss.s', baseline: `one ${big} signed GET`, digits: 0, agg: 'max' },
    ...(s3Size > 0
      ? [
          { name: `S3: ${s3} signed GET, one download: MB/s`, s: 's3.mbps.s', b: 's3.mbps.n', baseline: NS3, digits: 0 },
          { name: `S3: ${s3} signed GET, one download: server CPU, s per GiB`, s: 's3.cpu.s', b: 's3.cpu.n', baseline: NS3, digits: 2 },
          { name: `S3: ${s3} signed GET, middle half (Range): MB/s`, s: 's3.range.mbps.s', b: 's3.range.mbps.n', baseline: NS3, digits: 0 },
          { name: `S3: ${s3} signed GET, one download: peak RSS, MiB`, s: 's3.rss.s', b: 's3.rss.n', baseline: NS3, digits: 0, agg: 'max' as const },
          { name: `S3: ${s3ZipCount} × ${formatSize(zipSize)} batch ZIP: MB/s of file data`, s: 's3zip.mbps.s', b: 's3.mbps.s', baseline: `S3 signed GET (same server)`, digits: 0 },
          { name: `S3: ${s3ZipCount} × ${formatSize(zipSize)} batch ZIP: server peak RSS, MiB`, s: 's3zip.rss.s', b: 's3.rss.s', baseline: 'S3 signed GET (same server)', digits: 0, agg: 'max' as const },
        ]
      : []),
  ];
  const rows = specs.map((spec) => figures.row(spec));
  const loadLine = `load average (1 min) ${loadAtStart} at start, ${loadAverage()} at end (at each part: ${loads.join(', ')})`;
  const command = `node --import tsx bench/sharing.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  console.log(`\n${renderText(rows, FIGURE_COLUMNS)}\n`);
  console.log(`${loadLine}; ${machine.cores} cores; ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  for (const n of notes) console.log(`note: ${n}`);
  writeReport(values.out, {
    title: 'Sharing benchmark: latest run',
    machine,
    details: [
      `Node ${machine.node}, ${machine.date}; ${loadLine}`,
      `code: ${code}; clients: curl -o /dev/null (one process per download), wrk -t1`,
      `command: \`${command}\``,
    ],
    table: renderMarkdown(rows, FIGURE_COLUMNS),
    notes,
  });
  log(`written: ${values.out}`);
}

function boundedInt(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function fail(message: string): never {
  console.error(`bench/sharing: ${message}`);
  killAllSync();
  process.exit(2);
}

main().catch((error: unknown) => {
  killAllSync();
  console.error(error);
  process.exit(1);
});
