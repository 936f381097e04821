// What each held PATCH keeps alive, object by object, in the real server and in bare @tus/server:
// each target is started as `npm run bench` starts it (compiled, an inspector on 127.0.0.1), its
// PATCH path warmed up, a heap snapshot taken, `--connections` PATCHes held open as the
// connections part holds them (bench/lib/open-connections.ts), a second snapshot taken, and the
// objects new in the second are printed per connection, grouped by constructor, closure or
// suspended async function (with its source line) and, for nameless internals, by what holds
// them (bench/lib/heap-diff.ts). Lines of the real server are of its build (dist/).
//   node --import tsx bench/held-heap.ts [--target real|baseline|both] [--connections 300] [--rows 40] [--by-holder]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HOOKS, startHooks } from './lib/hooks-on.ts';
import { connectInspector, type Live } from './lib/inspector.ts';
import { holdOpenPatches, liveBytesPerConnection, uploadsCreated } from './lib/open-connections.ts';
import { idsOf, newObjects, type Group, type HeapDiff } from './lib/heap-diff.ts';
import { killAllSync, startTarget, type TargetName } from './lib/targets.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'both' },
    connections: { type: 'string', default: '300' },
    rows: { type: 'string', default: '40' },
    /** label plain Objects, Arrays, Promises, strings… by what holds them (finer, many more groups) */
    'by-holder': { type: 'boolean', default: false },
    hooks: { type: 'string', default: HOOKS.join(',') },
  },
});
const connections = Number(values.connections);
const rows = Number(values.rows);
if (!Number.isInteger(connections) || connections < 10) throw new Error('--connections: a whole number ≥ 10');
const wanted: TargetName[] = values.target === 'both' ? ['baseline', 'real'] : [values.target as TargetName];
if (!wanted.every((t) => t === 'baseline' || t === 'real')) throw new Error('--target: real, baseline or both');

type Measured = { diff: HeapDiff; livePerConnection: number };

async function measure(target: TargetName, dir: string, env: Record<string, string>): Promise<Measured> {
  const limit = String(uploadsCreated(connections));
  const server = await startTarget(ROOT, target, {
    nodeArgs: ['--inspect=127.0.0.1:0'],
    env: target === 'real' ? { ...env, UPLOAD_MAX_UNFINISHED_PER_USER: limit, UPLOAD_MAX_REQUESTS_PER_USER: limit } : {},
  });
  const inspector = await connectInspector(server);
  try {
    const files: string[] = [];
    // Called by holdOpenPatches once before the PATCHes are held and once with all of them held.
    const liveAndSnapshot = async (): Promise<Live> => {
      const live = await inspector.liveMemory();
      const file = join(dir, `${target}-${files.length}.heapsnapshot`);
      await inspector.evaluate(`process.getBuiltinModule('node:v8').writeHeapSnapshot(${JSON.stringify(file)})`);
      files.push(file);
      return live;
    };
    const sample = await holdOpenPatches(server, connections, liveAndSnapshot);
    if (sample.problem) throw new Error(`${target}: ${sample.problem}`);
    const before = await idsOf(files[0]!);
    return { diff: await newObjects(files[1]!, before, ROOT, values['by-holder']), livePerConnection: liveBytesPerConnection(sample) };
  } finally {
    inspector.close();
    await server.stop();
  }
}

function render(measured: Map<TargetName, Measured>, only?: (key: string) => boolean): string {
  const names = [...measured.keys()];
  const per = (g: Group | undefined) => (g ? { count: g.count / connections, kib: g.bytes / connections / 1024 } : { count: 0, kib: 0 });
  const keys = new Set<string>();
  for (const m of measured.values()) for (const k of m.diff.groups.keys()) if (!only || only(k)) keys.add(k);
  const weight = (k: string) => Math.max(...names.map((n) => per(measured.get(n)!.diff.groups.get(k)).kib));
  const sorted = [...keys].sort((a, b) => weight(b) - weight(a));
  const cells = (k: string) => names.map((n) => {
    const p = per(measured.get(n)!.diff.groups.get(k));
    return p.count === 0 ? '— | —' : `${p.count.toFixed(2)} | ${(p.kib * 1024).toFixed(0)} B`;
  });
  const head = `| objects new with the PATCHes held, per connection | ${names.map((n) => `${n}: count | self size`).join(' | ')} |`;
  const lines = [head, `|---|${names.map(() => '---:|---:').join('|')}|`];
  for (const k of only ? sorted : sorted.slice(0, rows)) lines.push(`| ${k.replaceAll('|', '\\|')} | ${cells(k).join(' | ')} |`);
  if (only) return lines.join('\n');
  const rest = sorted.slice(rows);
  const restCells = names.map((n) => {
    const groups = measured.get(n)!.diff.groups;
    const sum = rest.reduce((a, k) => ({ count: a.count + (groups.get(k)?.count ?? 0), bytes: a.bytes + (groups.get(k)?.bytes ?? 0) }), { count: 0, bytes: 0 });
    const p = per(sum);
    return `${p.count.toFixed(2)} | ${(p.kib * 1024).toFixed(0)} B`;
  });
  lines.push(`| the other ${rest.length} groups | ${restCells.join(' | ')} |`);
  lines.push(`| **total self size** | ${names.map((n) => `${per(measured.get(n)!.diff.total).count.toFixed(1)} | **${per(measured.get(n)!.diff.total).kib.toFixed(1)} KiB**`).join(' | ')} |`);
  lines.push(`| live heap + external after a full GC (process.memoryUsage) | ${names.map((n) => `| ${(measured.get(n)!.livePerConnection / 1024).toFixed(1)} KiB`).join(' | ')} |`);
  return lines.join('\n');
}

process.once('SIGINT', () => {
  killAllSync();
  process.exit(130);
});
const dir = await mkdtemp(join(tmpdir(), 'held-heap-'));
const hooks = await startHooks(wanted.includes('real') ? (values.hooks.split(',').filter(Boolean) as typeof HOOKS[number][]) : []);
try {
  const measured = new Map<TargetName, Measured>();
  for (const t of wanted) measured.set(t, await measure(t, dir, hooks.env));
  console.log(`${connections} PATCHes held; hooks on: ${hooks.on.join(', ') || 'none'}; ${new Date().toISOString()}\n`);
  console.log(render(measured));
  console.log('\nThe suspended async functions among them (each also keeps its registers, context and promise):\n');
  console.log(render(measured, (k) => k.startsWith('suspended async')));
} finally {
  await hooks.stop();
  await rm(dir, { recursive: true, force: true });
}
