// Download side: signed GET and batch ZIP of the real server (server/main.ts) beside
// Caddy's file_server and `zip -0` doing the same work in the same run, on the same files (Caddy
// serves the server's own DATA_DIR, so both read the same page-cached bytes). One table, also
// written with the machine's description to bench/results/sharing.md. See bench/README.md.
//   node --import tsx bench/sharing.ts --file-size 256MiB --zip-count 4 --zip-size 16MiB --repeat 1 --duration 3
import http from 'node:http';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { caddyUnavailable, startCaddy, type Caddy } from './lib/caddy.ts';
import { runCommand } from './lib/command.ts';
import { curlDownload, parallelDownloads, wrk, zipStore, type Download } from './lib/download-clients.ts';
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

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const notes: string[] = [];
/** Every measured figure, by name: `<figure>.s` for Stream-Line, `<figure>.b` (or another name) for its baseline. */
const figures = new Figures();
const record = (name: string, v: number): void => figures.record(name, v);

type Side = 's' | 'b';
/** Alternates which side goes first, to spread any drift of the machine over both. */
const order = (i: number): Side[] => (i % 2 === 0 ? ['s', 'b'] : ['b', 's']);
/** The 1-minute load average as each part starts: the machine is shared, so it goes in the file. */
const loads: string[] = [];
const phase = (name: string, short: string): void => {
  loads.push(`${short} ${loadAverage()}`);
  log(`${name} (load ${loadAverage()}, ${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
};
const startedAt = performance.now();

async function main(): Promise<void> {
  const machine = describeMachine();
  const loadAtStart = loadAverage();
  const missing = realUnavailable(ROOT) ?? caddyUnavailable();
  if (missing) fail(missing);
  const real = await startTarget(ROOT, 'real');
  let caddy: Caddy | undefined;
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
    notes.push(`Caddy ${caddy.version} file_server on the server's DATA_DIR: both serve the same page-cached files`);
    const caddyUrl = (key: string): string => `${caddy!.url}/${key.split('/').map(encodeURIComponent).join('/')}`;
    const big = { s: await signedUrl(real, bigKey), b: caddyUrl(bigKey) };
    const small = { s: await signedUrl(real, smallKey), b: caddyUrl(smallKey) };
    const pids = { s: real.pid, b: caddy.pid };
    for (const side of ['s', 'b'] as const) expectDownload(await curlDownload(small[side]), smallSize, `warm-up ${side}`);

    phase(`${formatSize(fileSize)}: one download, then ${parallel} at once`, 'large GETs');
    for (const side of ['s', 'b'] as const) record(`idle.rss.${side}`, mib(readRss(pids[side]).rss));
    for (let i = 0; i < repeat; i++) {
      for (const side of order(i)) {
        const [d, w] = await watched(pids[side], () => curlDownload(big[side]));
        if (!expectDownload(d, fileSize, `one download, ${side}`)) continue;
        record(`one.mbps.${side}`, mbPerSecond(d.bytes, d.ms));
        record(`one.cpu.${side}`, w.cpuS / (d.bytes / GiB));
        record(`one.rss.${side}`, mib(w.peakRss));
      }
    }
    for (let i = 0; i < repeat; i++) {
      for (const side of order(i)) {
        const [d, w] = await watched(pids[side], () => parallelDownloads(big[side], parallel));
        if (!expectDownload(d, parallel * fileSize, `${parallel} parallel, ${side}`)) continue;
        record(`par.mbps.${side}`, mbPerSecond(d.bytes, d.ms));
        record(`par.rss.${side}`, mib(w.peakRss));
      }
    }

    phase(`${formatSize(smallSize)}: wrk -t1 -c${connections} -d${duration}s`, 'wrk');
    for (let i = 0; i < loadRepeat; i++) {
      for (const side of order(i)) {
        const [l, w] = await watched(pids[side], () => wrk(small[side], duration, connections));
        if (l.errors > 0) notes.push(`wrk ${side === 's' ? 'signed GET' : 'Caddy'}: ${l.errors} errors or non-2xx answers of ${l.requests}`);
        record(`rps.${side}`, l.rps);
        record(`p50.${side}`, l.p50Ms);
        record(`p99.${side}`, l.p99Ms);
        record(`rcpu.${side}`, (w.cpuS / l.requests) * 1e6);
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
    await real.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  phase('done', 'end');
  report(machine, loadAtStart, await codeVersion());
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

/** True when the answer is 200 with the expected bytes (at least them, for an archive). */
function expectDownload(d: Download, bytes: number, what: string, atLeast = false): boolean {
  const ok = d.status === 200 && (atLeast ? d.bytes > bytes : d.bytes === bytes);
  if (!ok) notes.push(`${what}: answered ${d.status} with ${d.bytes} bytes (expected ${atLeast ? 'more than ' : ''}${bytes}); not counted`);
  return ok;
}

function report(machine: ReturnType<typeof describeMachine>, loadAtStart: string, code: string): void {
  const big = formatSize(fileSize);
  const zips = `${zipCount} × ${formatSize(zipSize)} batch ZIP`;
  const wrkDesc = `wrk ${connections} conn., ${duration} s`;
  const specs: FigureSpec[] = [
    { name: `${big} signed GET, one download: MB/s`, s: 'one.mbps.s', b: 'one.mbps.b', baseline: 'Caddy file_server', digits: 0 },
    { name: `${big} signed GET, ${parallel} parallel: MB/s in all`, s: 'par.mbps.s', b: 'par.mbps.b', baseline: 'Caddy file_server', digits: 0 },
    { name: `${big} signed GET, one download: server CPU, s per GiB`, s: 'one.cpu.s', b: 'one.cpu.b', baseline: 'Caddy file_server', digits: 2 },
    { name: 'server RSS before the downloads, MiB', s: 'idle.rss.s', b: 'idle.rss.b', baseline: 'Caddy', digits: 0 },
    { name: `${big} signed GET, one download: peak RSS, MiB`, s: 'one.rss.s', b: 'one.rss.b', baseline: 'Caddy', digits: 0, agg: 'max' },
    { name: `${big} signed GET, ${parallel} parallel: peak RSS, MiB`, s: 'par.rss.s', b: 'par.rss.b', baseline: 'Caddy', digits: 0, agg: 'max' },
    { name: `${formatSize(smallSize)} signed GET: requests/s (${wrkDesc})`, s: 'rps.s', b: 'rps.b', baseline: 'Caddy file_server', digits: 0 },
    { name: `${formatSize(smallSize)} signed GET: latency p50, ms`, s: 'p50.s', b: 'p50.b', baseline: 'Caddy file_server', digits: 2 },
    { name: `${formatSize(smallSize)} signed GET: latency p99, ms`, s: 'p99.s', b: 'p99.b', baseline: 'Caddy file_server', digits: 2 },
    { name: `${formatSize(smallSize)} signed GET: server CPU per request, µs`, s: 'rcpu.s', b: 'rcpu.b', baseline: 'Caddy file_server', digits: 0 },
    { name: `${zips}: MB/s of file data`, s: 'zip.mbps.s', b: 'zip.mbps.disk', baseline: 'zip -0 out.zip (disk)', digits: 0 },
    { name: `${zips}: MB/s of file data`, s: 'zip.mbps.s', b: 'zip.mbps.null', baseline: 'zip -0 - > /dev/null', digits: 0 },
    { name: `${zips}: CPU, s per GiB`, s: 'zip.cpu.s', b: 'zip.cpu.null', baseline: 'zip -0 - > /dev/null', digits: 2 },
    { name: `${zips}: server peak RSS, MiB`, s: 'zip.rss.s', baseline: '', digits: 0, agg: 'max' },
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
