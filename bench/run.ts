// `npm run bench`: measures the upload path of the real server against bare @tus/server +
// @tus/file-store (bench/baseline-bare-tus.ts) in the same run, next to the machine's own limits,
// and prints one table (also written to bench/results/latest.md). See bench/README.md.
//   npm run bench -- --size 256MiB --only upload,chunked --repeat 1
//   npm run bench -- --only small,files,connections --repeat 3
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine, loadAverage, diskLimit, loopbackLimit, nodeSha256Limit, sha256Limit } from './lib/machine.ts';
import { payloadSha256 } from './lib/payload.ts';
import { figureRow, figures, growthRow, limitsRow, pairRow, renderMarkdown, renderText, targets, throughputRow } from './lib/table.ts';
import type { Limits, Row, Runs } from './lib/table.ts';
import { killAllSync, realUnavailable, type TargetName } from './lib/targets.ts';
import { formatSize, parseSize } from './lib/units.ts';
import { finish, parallel, sequential, type Sample } from './lib/workloads.ts';
import { writeReport } from './lib/report.ts';
import { HOOKS, startHooks, type Hook, type Hooks } from './lib/hooks-on.ts';
import { profilePart } from './lib/profile-part.ts';
import { connectionRows, connectionsPart, filesPart, filesRows, smallPart, smallRows, type PartContext } from './lib/upload-path-parts.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PARTS = ['limits', 'upload', 'chunked', 'finish', 'parallel', 'small', 'files', 'connections', 'profile'] as const;
type Part = (typeof PARTS)[number];
/** Everything but the CPU profile, which is a diagnosis rather than a figure. */
const DEFAULT_PARTS = PARTS.filter((p) => p !== 'profile');

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    chunk: { type: 'string', default: '8MiB' },
    parallel: { type: 'string', default: '8' },
    'parallel-size': { type: 'string', default: '256MiB' },
    'small-size': { type: 'string', default: '64MiB' },
    repeat: { type: 'string', default: '3' },
    'upload-size': { type: 'string', default: '10KiB' },
    concurrency: { type: 'string', default: '16' },
    count: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '15' },
    'file-counts': { type: 'string', default: '0,10000,100000' },
    connections: { type: 'string', default: '1000' },
    hooks: { type: 'string', default: HOOKS.join(',') },
    'profile-seconds': { type: 'string', default: '20' },
    only: { type: 'string', default: DEFAULT_PARTS.join(',') },
    targets: { type: 'string', default: 'baseline,real' },
    out: { type: 'string', default: join(ROOT, 'bench/results/latest.md') },
  },
});

const size = parseSize(values.size);
const chunk = parseSize(values.chunk);
const parallelCount = boundedInt('parallel', values.parallel, 1, 64);
const parallelSize = parseSize(values['parallel-size']);
const smallSize = parseSize(values['small-size']);
const repeat = boundedInt('repeat', values.repeat, 1, 10);
const only = new Set(values.only.split(',').map((s) => s.trim()));
for (const p of only) if (!PARTS.includes(p as Part)) fail(`--only: unknown part "${p}" (known: ${PARTS.join(', ')})`);
const smallOptions = {
  size: parseSize(values['upload-size']),
  concurrency: boundedInt('concurrency', values.concurrency, 1, 256),
  count: boundedInt('count', values.count, 1, 1_000_000),
  maxMs: boundedInt('seconds', values.seconds, 1, 3600) * 1000,
};
const fileCounts = values['file-counts'].split(',').map((s) => boundedInt('file-counts', s.trim(), 0, 10_000_000));
if (!fileCounts.includes(0)) fail('--file-counts must include 0: the other counts are compared with it');
const connectionCount = boundedInt('connections', values.connections, 1, 10_000);
const profileSeconds = boundedInt('profile-seconds', values['profile-seconds'], 1, 600);
const hookNames = values.hooks === 'none' ? [] : values.hooks.split(',').map((s) => s.trim());
for (const h of hookNames) if (!HOOKS.includes(h as Hook)) fail(`--hooks: unknown hook "${h}" (known: ${HOOKS.join(', ')}, or none)`);
const wanted = new Set(values.targets.split(',').map((s) => s.trim()));
if (!wanted.has('baseline')) fail('--targets must include baseline: every ratio is against it');

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const notes: string[] = [];

async function main(): Promise<void> {
  const machine = describeMachine();
  const loadAtStart = loadAverage();
  log(`bench: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`);
  for (const n of new Set([size, parallelSize, smallSize])) payloadSha256(n); // outside any timing

  const realReason = wanted.has('real') ? realUnavailable(ROOT) ?? (await smokeTest()) : 'not in --targets';
  if (realReason) notes.push(`real server skipped: ${realReason}`);
  const targetsToRun: TargetName[] = realReason ? ['baseline'] : ['baseline', 'real'];

  const limits: Limits = {};
  if (only.has('limits') || only.has('upload')) {
    // The hash alone, in this process: what the server's CPU per GiB is compared with.
    limits.nodeSha256 = nodeSha256Limit(size);
  }
  if (only.has('limits')) {
    log('limits: loopback, dd, sha256sum, node sha256');
    limits.loopback = await loopbackLimit(ROOT, size);
    limits.disk = await diskLimit(size);
    limits.sha256 = await sha256Limit(size);
    for (const l of Object.values(limits)) notes.push(`limit: ${l.detail}: ${l.mbps.toFixed(0)} MB/s`);
  }

  const runs: Partial<Record<'upload' | 'chunked' | 'finish' | 'small' | 'big', Runs>> = {};
  if (only.has('upload')) runs.upload = await series(`${formatSize(size)} one PATCH`, repeat, targetsToRun, (t) => sequential(ROOT, t, size, size));
  if (only.has('chunked')) runs.chunked = await series(`${formatSize(size)} in ${formatSize(chunk)} PATCHes`, repeat, targetsToRun, (t) => sequential(ROOT, t, size, chunk));
  if (only.has('finish')) runs.finish = await series(`${formatSize(size)} finish`, 1, targetsToRun, (t) => finish(ROOT, t, size, Math.min(repeat, 3)));
  if (only.has('parallel')) {
    runs.small = await series(`${parallelCount} × ${formatSize(smallSize)} parallel`, repeat, targetsToRun, (t) => parallel(ROOT, t, parallelCount, smallSize));
    runs.big = await series(`${parallelCount} × ${formatSize(parallelSize)} parallel`, repeat, targetsToRun, (t) => parallel(ROOT, t, parallelCount, parallelSize));
  }

  const rows = buildRows(runs, limits);
  if (['small', 'files', 'connections', 'profile'].some((p) => only.has(p))) rows.push(...(await uploadPathParts(targetsToRun)));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const text = renderText(rows);
  console.log(`\n${text}\n`);
  for (const n of notes) console.log(`note: ${n}`);

  writeReport(values.out, {
    title: 'Upload benchmark: latest run',
    machine,
    details: [
      `Node ${machine.node}, ${machine.date}; load average (1 min) ${loadAtStart} at start, ${loadAverage()} at end${loadByPart.length ? ` (${loadByPart.join(', ')})` : ''}`,
      `command: \`${command}\``,
    ],
    table: renderMarkdown(rows),
    notes,
  });
  log(`written: ${values.out}`);
}

/** Load average (1 min) when each part started: the machine is shared. */
const loadByPart: string[] = [];

async function uploadPathParts(who: TargetName[]): Promise<Row[]> {
  // clamd and the webhook receiver serve only the real server.
  const hooks: Hooks = await startHooks(who.includes('real') ? (hookNames as Hook[]) : []);
  notes.push(...hooks.notes, `real server hooks on: ${hooks.on.join(', ') || 'none beyond the built-in ones'}`);
  const c: PartContext = {
    root: ROOT,
    hooks,
    repeat,
    small: smallOptions,
    series: (name, n, once) => series(name, n, who, once),
    log,
    notes,
  };
  const rows: Row[] = [];
  try {
    if (only.has('small')) {
      loadByPart.push(`small ${loadAverage()}`);
      rows.push(...smallRows(c, await smallPart(c)));
    }
    if (only.has('files')) {
      loadByPart.push(`files ${loadAverage()}`);
      rows.push(...filesRows(c, await filesPart(c, fileCounts, who.includes('real'))));
    }
    if (only.has('connections')) {
      loadByPart.push(`connections ${loadAverage()}`);
      rows.push(...connectionRows(connectionCount, await connectionsPart(c, connectionCount)));
    }
    if (only.has('profile') && who.includes('real')) {
      loadByPart.push(`profile ${loadAverage()}`);
      console.log(await profilePart(c, profileSeconds));
    }
  } finally {
    await hooks.stop();
  }
  return rows;
}

function buildRows(runs: Partial<Record<string, Runs>>, limits: Limits): Row[] {
  const a = `${formatSize(size)} one PATCH`;
  const b = `${formatSize(size)} in ${formatSize(chunk)} PATCHes`;
  const small = `${parallelCount} × ${formatSize(smallSize)} parallel`;
  const big = `${parallelCount} × ${formatSize(parallelSize)} parallel`;
  const rows: (Row | null)[] = [
    throughputRow(a, runs.upload, limits, targets.throughput),
    throughputRow(b, runs.chunked, limits, targets.throughput),
    throughputRow(big, runs.big, limits),
    throughputRow(small, runs.small, limits),
    only.has('limits') ? limitsRow(limits) : null,
    figureRow(`${formatSize(size)} upload: its final 1-byte PATCH, ms`, runs.finish, figures.finishLatency, targets.latency),
    figureRow(`${a}: last byte sent → response, ms`, runs.upload, figures.finishLatency),
    figureRow(`${b}: last byte sent → last response, ms`, runs.chunked, figures.finishLatency),
    figureRow(`${a}: server CPU, % of one core`, runs.upload, figures.serverCpu),
    figureRow(`${a}: server main thread, % of one core`, runs.upload, figures.mainThreadCpu),
    figureRow(`${b}: server main thread, % of one core`, runs.chunked, figures.mainThreadCpu),
    figureRow(`${a}: client CPU, % of one core`, runs.upload, figures.clientCpu),
    figureRow(`${a}: server CPU, s per GiB`, runs.upload, figures.serverCpuPerGiB),
    hashedCpuRow(a, runs.upload, limits),
    figureRow(`${b}: server CPU, s per GiB`, runs.chunked, figures.serverCpuPerGiB),
    figureRow(`${big}: server CPU, s per GiB`, runs.big, figures.serverCpuPerGiB),
    figureRow(`${a}: rchar / size`, runs.upload, figures.rcharPerByte, targets.reads),
    figureRow(`${a}: read_bytes / size`, runs.upload, figures.readBytesPerByte),
    figureRow(`${b}: rchar / size`, runs.chunked, figures.rcharPerByte, targets.reads),
    figureRow(`${big}: rchar / size`, runs.big, figures.rcharPerByte, targets.reads),
    figureRow(`${big}: peak RSS, MiB`, runs.big, figures.peakRss, targets.memory),
    figureRow(`${small}: peak RSS, MiB`, runs.small, figures.peakRss),
    growthRow(`peak RSS ${formatSize(parallelSize)} / ${formatSize(smallSize)} parallel`, runs.small, runs.big),
    figureRow(`${a}: peak RSS, MiB`, runs.upload, figures.peakRss),
    figureRow(`${a}: RSS at start, MiB`, runs.upload, figures.idleRss),
  ];
  return rows.filter((r): r is Row => r !== null);
}

/**
 * Server CPU per GiB of one large upload against what it cannot avoid: bare tus's CPU per GiB plus
 * SHA-256's (node:crypto, measured in this process in the same run).
 */
function hashedCpuRow(name: string, upload: Runs | undefined, limits: Limits): Row | null {
  const sha = limits.nodeSha256?.cpuSPerGiB;
  if (!upload || sha === undefined) return null;
  const perGiB = (s: Sample[]): number[] => s.map((x) => x.serverCpuS / (x.bytes / 1024 ** 3));
  const row = pairRow(`${name}: server CPU, s per GiB, against baseline + node sha256 (${sha.toFixed(2)} s)`, perGiB(upload.baseline).map((b) => b + sha), upload.real && perGiB(upload.real), 2, targets.hashOnly);
  return row;
}

/** Runs `once` `n` times per target, alternating which target goes first to spread any drift. */
async function series<T extends { problem: string }>(name: string, n: number, who: TargetName[], once: (t: TargetName) => Promise<T>): Promise<{ baseline: T[]; real?: T[] }> {
  const runs: { baseline: T[]; real?: T[] } = { baseline: [], real: who.includes('real') ? [] : undefined };
  for (let i = 0; i < n; i++) {
    const order = i % 2 === 0 ? who : [...who].reverse();
    for (const t of order) {
      log(`${name}: ${t} (${i + 1}/${n})`);
      try {
        const s = await once(t);
        runs[t]!.push(s);
        if (s.problem) notes.push(`${name}, ${t}: ${s.problem}`);
      } catch (error) {
        if (t === 'baseline') throw error;
        notes.push(`${name}, real: failed: ${(error as Error).message}`);
      }
    }
  }
  return runs;
}

/** Null when the real server starts and takes a small upload; otherwise why not. */
async function smokeTest(): Promise<string | null> {
  try {
    const s = await sequential(ROOT, 'real', 1024 * 1024, 1024 * 1024);
    return s.problem ? `smoke upload of 1 MiB: ${s.problem}` : null;
  } catch (error) {
    return `smoke upload of 1 MiB failed: ${(error as Error).message}`;
  }
}

function boundedInt(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

main().catch((error: unknown) => {
  killAllSync();
  console.error(error);
  process.exit(1);
});
