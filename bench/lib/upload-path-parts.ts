// The parts of `npm run bench` that measure the cost of one upload rather than bytes per second:
//   small        10 KiB creation-with-upload POSTs, 16 at once: uploads/s and server CPU per upload
//   files        the same for a user who already has 0, 10,000, 100,000 files (seeded rows)
//   connections  1,000 PATCHes held open at once: server memory per connection
// Each measurement starts its own server process; the real one has every hook on (lib/hooks-on.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hooks } from './hooks-on.ts';
import { connectInspector, type Inspector } from './inspector.ts';
import { bytesPerConnection, bytesPerConnectionSecondHalf, holdOpenPatches, liveBytesPerConnection, uploadsCreated, type HeldSample } from './open-connections.ts';
import { DB_FILE, seedFiles, type Seeded } from './seed-files.ts';
import { cpuMsPerUpload, measureSmall, sendSmall, uploadsPerSecond, type SmallOptions, type SmallSample } from './small-uploads.ts';
import { pairRow, realOnlyRow, targets, type Row } from './table.ts';
import { startTarget, type Running, type TargetName } from './targets.ts';
import { formatSize, median, mib } from './units.ts';

/** Uploads by another user before each measurement, so compiled code and caches are warm. */
const WARM_UPLOADS = 200;
const MEASURED_USER = 'bench';
const WARM_USER = 'bench-warmup';

export type Both<T> = { baseline: T[]; real?: T[] };
export type Series = <T extends { problem: string }>(name: string, n: number, once: (t: TargetName) => Promise<T>) => Promise<Both<T>>;

export type PartContext = {
  root: string;
  hooks: Hooks;
  repeat: number;
  small: Omit<SmallOptions, 'userId'>;
  series: Series;
  log: (s: string) => void;
  notes: string[];
};

const smallName = (o: PartContext['small']): string => `${formatSize(o.size)} creation-with-upload, ${o.concurrency} at once`;

/** Starts `t` (the real one with the hooks, on `dataDir` if given), warms it up, measures `o.count` uploads. */
async function smallOnce(c: PartContext, t: TargetName, dataDir?: string): Promise<SmallSample> {
  const server = await startTarget(c.root, t, t === 'real' ? { env: c.hooks.env, dataDir } : {});
  try {
    const settled = t === 'real' ? (n: number) => c.hooks.settled(n) : undefined;
    c.hooks.mark();
    const warm = await sendSmall(server, t, { ...c.small, count: WARM_UPLOADS, userId: WARM_USER });
    if (warm.problem) throw new Error(`warm-up: ${warm.problem}`);
    await settled?.(warm.uploads);
    c.hooks.mark();
    return await measureSmall(server, t, { ...c.small, userId: MEASURED_USER }, settled);
  } finally {
    await server.stop();
  }
}

export async function smallPart(c: PartContext): Promise<Both<SmallSample>> {
  const runs = await c.series(smallName(c.small), c.repeat, (t) => smallOnce(c, t));
  noteSettle(c, smallName(c.small), runs.real);
  return runs;
}

export function smallRows(c: PartContext, runs: Both<SmallSample>): Row[] {
  const name = smallName(c.small);
  return [
    pairRow(`${name}: uploads/s`, runs.baseline.map(uploadsPerSecond), runs.real?.map(uploadsPerSecond), 0, targets.atLeastBaseline),
    pairRow(`${name}: server CPU, ms per upload`, runs.baseline.map(cpuMsPerUpload), runs.real?.map(cpuMsPerUpload), 2),
  ].filter((r): r is Row => r !== null);
}

export type FilesRuns = { baseline: SmallSample[]; byCount: Map<number, SmallSample[]> };

/**
 * Per round: bare once, then the real server for each file count, each on a fresh DATA_DIR that
 * was migrated by a first start, seeded while stopped, then started again (the 0 point too, so
 * every point has the same history). Order alternates between rounds.
 */
export async function filesPart(c: PartContext, counts: number[], withReal: boolean): Promise<FilesRuns> {
  const out: FilesRuns = { baseline: [], byCount: new Map(counts.map((n) => [n, []])) };
  const seeding = new Map<number, Seeded[]>(counts.map((n) => [n, []]));
  for (let i = 0; i < c.repeat; i++) {
    const steps: (() => Promise<void>)[] = [
      async () => {
        c.log(`files: baseline (${i + 1}/${c.repeat})`);
        out.baseline.push(checked(c, 'files, baseline', await smallOnce(c, 'baseline')));
      },
      ...(withReal ? counts : []).map((n) => async () => {
        c.log(`files: real, user with ${n} files (${i + 1}/${c.repeat})`);
        out.byCount.get(n)!.push(checked(c, `files ${n}, real`, await atFileCount(c, n, (s) => seeding.get(n)!.push(s))));
      }),
    ];
    for (const step of i % 2 === 0 ? steps : steps.reverse()) await step();
  }
  for (const [n, s] of out.byCount) noteSettle(c, `user with ${n} files`, s);
  for (const [n, s] of seeding) if (s.length) c.notes.push(seedingNote(n, s));
  return out;
}

async function atFileCount(c: PartContext, n: number, seeded: (s: Seeded) => void): Promise<SmallSample> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-files-'));
  try {
    const first: Running = await startTarget(c.root, 'real', { env: c.hooks.env, dataDir });
    await first.stop();
    seeded(seedFiles(join(dataDir, DB_FILE), MEASURED_USER, n));
    return await smallOnce(c, 'real', dataDir);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function filesRows(c: PartContext, runs: FilesRuns): Row[] {
  const rows: (Row | null)[] = [];
  const counts = [...runs.byCount.keys()];
  for (const n of counts) {
    const s = runs.byCount.get(n)!;
    const name = `${formatSize(c.small.size)} uploads, user with ${n.toLocaleString('en')} files`;
    rows.push(pairRow(`${name}: uploads/s`, runs.baseline.map(uploadsPerSecond), s.map(uploadsPerSecond), 0, targets.atLeastBaseline));
    rows.push(pairRow(`${name}: server CPU, ms per upload`, runs.baseline.map(cpuMsPerUpload), s.map(cpuMsPerUpload), 2));
  }
  const none = runs.byCount.get(0);
  for (const n of counts.filter((k) => k > 0)) {
    const cpu = (k: SmallSample[] | undefined): number => (k?.length ? median(k.map(cpuMsPerUpload)) : Number.NaN);
    const rate = (k: SmallSample[] | undefined): number => (k?.length ? median(k.map(uploadsPerSecond)) : Number.NaN);
    const many = runs.byCount.get(n);
    rows.push(realOnlyRow(`CPU per upload, ${n.toLocaleString('en')} files / 0 files`, cpu(many) / cpu(none), 2, targets.growth));
    rows.push(realOnlyRow(`uploads/s, ${n.toLocaleString('en')} files / 0 files`, rate(many) / rate(none), 2));
  }
  return rows.filter((r): r is Row => r !== null);
}

export async function connectionsPart(c: PartContext, count: number): Promise<Both<HeldSample>> {
  return c.series(`${count} held PATCHes`, c.repeat, async (t) => {
    // The inspector (127.0.0.1, a random port) lets the bench force a full GC and read the live heap.
    const nodeArgs = ['--inspect=127.0.0.1:0'];
    // One user holds every connection: its unfinished uploads and requests in flight
    // (UPLOAD_MAX_UNFINISHED_PER_USER, UPLOAD_MAX_REQUESTS_PER_USER) must not refuse any of them.
    const limit = String(uploadsCreated(count));
    const env = { ...c.hooks.env, UPLOAD_MAX_UNFINISHED_PER_USER: limit, UPLOAD_MAX_REQUESTS_PER_USER: limit };
    const server = await startTarget(c.root, t, t === 'real' ? { env, nodeArgs } : { nodeArgs });
    let inspector: Inspector | undefined;
    try {
      inspector = await connectInspector(server);
      return await holdOpenPatches(server, count, inspector.liveMemory);
    } finally {
      inspector?.close();
      await server.stop();
    }
  });
}

export function connectionRows(count: number, runs: Both<HeldSample>): Row[] {
  const name = `${count.toLocaleString('en')} PATCHes held open`;
  const kib = (s: HeldSample): number => bytesPerConnection(s) / 1024;
  const secondHalf = (s: HeldSample): number => bytesPerConnectionSecondHalf(s) / 1024;
  const sinceStart = (s: HeldSample): number => (s.rssHeld - s.rssStart) / s.connections / 1024;
  const live = (s: HeldSample): number => liveBytesPerConnection(s) / 1024;
  return [
    pairRow(`${name}: server memory per connection (RSS), KiB`, runs.baseline.map(kib), runs.real?.map(kib), 1, targets.atMostBaseline),
    pairRow(`${name}: live heap + external per connection after a full GC, KiB`, runs.baseline.map(live), runs.real?.map(live), 1, targets.atMostBaseline),
    pairRow(`${name}: the second half's RSS growth per connection, KiB`, runs.baseline.map(secondHalf), runs.real?.map(secondHalf), 1),
    pairRow(`${name}: (RSS held − RSS idle before the uploads were created) / connections, KiB`, runs.baseline.map(sinceStart), runs.real?.map(sinceStart), 1),
    pairRow(`${name}: server RSS before, MiB`, runs.baseline.map((s) => mib(s.rssBefore)), runs.real?.map((s) => mib(s.rssBefore)), 0),
    pairRow(`${name}: server RSS held, MiB`, runs.baseline.map((s) => mib(s.rssHeld)), runs.real?.map((s) => mib(s.rssHeld)), 0),
    pairRow(`${name}: descriptors per connection`, runs.baseline.map((s) => s.fdDelta / s.connections), runs.real?.map((s) => s.fdDelta / s.connections), 2),
  ].filter((r): r is Row => r !== null);
}

function seedingNote(n: number, s: Seeded[]): string {
  const gib = (s[0]!.bytes / 1024 ** 3).toFixed(0);
  return `user with ${n} files: rows seeded (${gib} GiB declared) in ${median(s.map((x) => x.ms)).toFixed(0)} ms (median)`;
}

function checked(c: PartContext, name: string, s: SmallSample): SmallSample {
  if (s.problem) c.notes.push(`${name}: ${s.problem}`);
  return s;
}

/** How long the hooks' work after the last response took (it is inside the CPU figure). */
function noteSettle(c: PartContext, name: string, s: SmallSample[] | undefined): void {
  if (!s?.length || !c.hooks.on.includes('webhooks')) return;
  c.notes.push(`${name}, real: ${median(s.map((x) => x.uploads)).toFixed(0)} uploads per measurement; webhook events all delivered ${median(s.map((x) => x.settleMs)).toFixed(0)} ms after the last response (median)`);
}
