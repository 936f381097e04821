// Reads a V8 .cpuprofile (node --cpu-prof) of the server and says where its main thread went:
// self and total time per function, and self time grouped by what the code belongs to — SQLite
// statements by the repository method that ran them, fs, tus, hooks, Hono, the server's own
// layers, Node's HTTP and streams, GC. Time in libuv's thread pool (fs, hashing off-thread) is
// not in a main-thread profile; only the JavaScript that starts and finishes it is.
import { readFileSync } from 'node:fs';

type CallFrame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type Profile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

export type Cost = { name: string; ms: number; share: number };
export type ProfileSummary = { totalMs: number; stages: Cost[]; groups: Cost[]; self: Cost[]; total: Cost[] };

/**
 * Stages of an upload's life, tested in this order on each sample's whole stack: a sample belongs
 * to the first stage any of its frames is in (so the finish's SQLite counts for the finish, the
 * tus handler's own work is what is left of it once the hooks it calls are taken out).
 */
const STAGES: [string, (f: CallFrame) => boolean][] = [
  ['webhook delivery (server/webhooks/dispatcher)', (f) => f.url.includes('/dist/server/webhooks/dispatcher.js')],
  ['virus scan worker (server/scan/)', (f) => f.url.includes('/dist/server/scan/')],
  ['finish: finalizeUpload (hooks/finalize)', (f) => f.functionName === 'finalizeUpload'],
  ['bytes: store write, SHA-256, type sniffing (hooks/observed-store.ts)', (f) => f.url.includes('/dist/hooks/observed-store.js') && f.functionName === 'write'],
  ['create: lifecycle.create (metadata, type policy, quota, event)', (f) => f.url.includes('/dist/hooks/index.js') && f.functionName === 'create'],
  ['tus handlers and @tus/file-store (the rest)', (f) => f.url.includes('/@tus/')],
  ['route: server/routes/uploads.ts (the rest)', (f) => f.url.includes('/dist/server/routes/uploads.js')],
  ['Hono and @hono/node-server (the rest)', (f) => f.url.includes('/hono/') || f.url.includes('/@hono/')],
  ['pino logging', (f) => /\/(pino|sonic-boom)\//.test(f.url)],
  ['Node HTTP parsing and socket writes', (f) => /node:(_http|net|internal\/stream_base)/.test(f.url)],
];

/** Files whose functions run SQL: a native better-sqlite3 call under them is that statement's cost. */
const SQL_FILES = /\/server\/db\/[^/]+\.js$|\/server\/webhooks\/outbox\.js$/;

export function summarizeProfile(path: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const groups = new Map<string, number>();
  const stages = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the time since the previous sample: the time of sample i - 1.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    totalMs += ms;
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!.callFrame);
    const leaf = stack[0]!;
    add(self, label(leaf), ms);
    for (const name of new Set(stack.map(label))) add(total, name, ms);
    add(groups, group(stack), ms);
    const stage = leaf.functionName.startsWith('(') ? leaf.functionName : STAGES.find(([, test]) => stack.some(test))?.[0] ?? 'other';
    add(stages, stage, ms);
  });
  const rank = (m: Map<string, number>, n: number): Cost[] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => ({ name, ms, share: ms / totalMs }));
  return { totalMs, stages: rank(stages, STAGES.length + 5), groups: rank(groups, 45), self: rank(self, top), total: rank(total, top + 15) };
}

function add(m: Map<string, number>, key: string, ms: number): void {
  m.set(key, (m.get(key) ?? 0) + ms);
}

function label(f: CallFrame): string {
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  return `${name} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** Wrappers that say nothing about which statement ran: the caller above them names it. */
const SQL_WRAPPERS = new Set(['atomically', 'transaction', 'sqliteTransaction', '']);

/** The group a sample's self time belongs to, from its leaf (and, for native calls, who made them). */
function group(stack: CallFrame[]): string {
  const leaf = stack[0]!;
  if (leaf.functionName.startsWith('(')) return leaf.functionName; // (garbage collector), (program), (idle)
  // Log lines are written synchronously to stdout (pino → sonic-boom → fs.writeSync).
  if (stack.some((f) => /\/(pino|sonic-boom|pino-std-serializers)\//.test(f.url))) return 'pino logging (sync write to stdout)';
  const sqlAt = stack.findIndex((f) => SQL_FILES.test(f.url));
  if (sqlAt >= 0 && (leaf.url === '' || leaf.url.includes('better-sqlite3') || SQL_FILES.test(leaf.url))) {
    const sql = stack[sqlAt]!;
    let name = `${sql.functionName || '(anonymous)'} (${shortUrl(sql.url)})`;
    if (SQL_WRAPPERS.has(sql.functionName)) {
      const caller = stack.slice(sqlAt).find((f) => f.url !== '' && !SQL_FILES.test(f.url) && !f.url.includes('better-sqlite3'));
      if (caller) name += ` ← ${caller.functionName || '(anonymous)'} (${shortUrl(caller.url)})`;
    }
    return `SQLite: ${name}`;
  }
  const u = leaf.url;
  if (u === '') {
    // A native function: an fs call by its name; otherwise named by the JavaScript that called it.
    const caller = stack.find((f) => f.url !== '');
    if (caller && /node:(internal\/)?fs/.test(caller.url)) return `fs call: ${leaf.functionName}`;
    return caller ? `native, from ${area(caller.url)}` : `native ${leaf.functionName}`;
  }
  return area(u);
}

function area(u: string): string {
  if (/node:(internal\/)?fs|node:internal\/fs/.test(u)) return 'fs (node:fs)';
  if (u.includes('/@tus/')) return 'tus internals (@tus/*)';
  if (u.includes('/dist/hooks/')) return `hooks: ${u.slice(u.indexOf('/dist/hooks/') + 12)}`;
  if (u.includes('/hono/') || u.includes('/@hono/')) return 'Hono (+ @hono/node-server)';
  if (u.includes('/pino') || u.includes('/sonic-boom/') || u.includes('thread-stream')) return 'pino logging';
  if (u.includes('/prom-client/')) return 'prom-client metrics';
  if (u.includes('/dist/server/')) {
    const rest = u.slice(u.indexOf('/dist/server/') + 13);
    return `server: ${rest.includes('/') ? `${rest.split('/')[0]}/` : rest}`;
  }
  if (u.includes('/node_modules/')) return `package: ${u.slice(u.lastIndexOf('/node_modules/') + 14).split('/').slice(0, u.includes('/node_modules/@') ? 2 : 1).join('/')}`;
  if (u.includes('undici')) return 'node: web Request/Response/Headers/fetch (undici)';
  if (/node:(_http|http|https|net|internal\/http|internal\/net|internal\/stream_base)/.test(u)) return 'node: http/net';
  if (/node:(stream|internal\/streams|internal\/webstreams)/.test(u)) return 'node: streams';
  if (/node:(crypto|internal\/crypto)/.test(u)) return 'node: crypto';
  if (u.startsWith('node:')) return `node: other (${u.slice(5).replace(/^internal\//, '').split('/')[0]})`;
  return 'other';
}
