// Starts the servers under test as child processes on port 0 and stops them by PID.
// Every target prints a JSON line {"msg":"listening","url":...} on stdout when ready
// (the real server through pino; the baseline and discard server by hand).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildSync } from 'esbuild';

export type TargetName = 'baseline' | 'real';

export type Running = {
  name: string;
  pid: number;
  url: string;
  /** the DATA_DIR it was given: finished files live at `<dataDir>/<key>` (server/storage/local.ts) */
  dataDir: string;
  /** headers every tus request to this target needs (auth) */
  headers: Readonly<Record<string, string>>;
  /** what it wrote to stderr so far (e.g. node's "Debugger listening on ws://…" line) */
  stderr: () => string;
  stop: () => Promise<void>;
};

type Spec = { entry: string; env: Record<string, string>; headers: Record<string, string>; nodeArgs?: readonly string[] };

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const live = new Set<ChildProcess>();

export const REAL_ENTRY = 'server/main.ts';
/** What `npm start` runs: the build of REAL_ENTRY (`npm run build`, tsc → dist/). */
const REAL_BUILT = 'dist/server/main.js';
/** The baseline and the discard server, compiled alike so that no target runs through tsx. */
const HELPERS_OUT = 'bench/results/build';

/** Why the real server cannot be measured, or null when its entry point exists. */
export function realUnavailable(root: string): string | null {
  return existsSync(join(root, REAL_ENTRY)) ? null : `${REAL_ENTRY} does not exist yet`;
}

/** What this bench process has compiled already. */
const compiled = new Set<string>();

/** `npm run build` (once per bench process); returns the path of the built server/main.js. */
export function builtServer(root: string): string {
  if (!compiled.has('real')) {
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
    if (tsc.status !== 0) throw new Error(`npm run build failed: ${(tsc.stdout + tsc.stderr).trim().slice(-2000)}`);
    compiled.add('real');
  }
  return join(root, REAL_BUILT);
}

/**
 * Every target runs as plain JavaScript, as production runs it: the real server from `npm run
 * build`, the baseline and the discard server bundled by esbuild (their dependencies stay in
 * node_modules). Under tsx the bare baseline measured ~50% more CPU per GiB (its GC time grows
 * with tsx's heap), which would flatter every ratio. Done once per bench process, outside any timing.
 */
function compile(root: string, name: TargetName | Helper): string {
  if (name === 'real') return builtServer(root);
  const source = HELPER_SOURCES[name];
  const out = join(HELPERS_OUT, `${name}.mjs`);
  if (!compiled.has(name)) {
    buildSync({ absWorkingDir: root, entryPoints: [source], outfile: out, bundle: true, packages: 'external', platform: 'node', format: 'esm', logLevel: 'error' });
    compiled.add(name);
  }
  return out;
}

type Helper = 'baseline' | 'discard' | 'bare-download';
const HELPER_SOURCES: Record<Helper, string> = {
  baseline: 'bench/baseline-bare-tus.ts',
  discard: 'bench/discard-server.ts',
  'bare-download': 'bench/bare-download-server.ts',
};

export type StartOptions = {
  /** extra environment (the real server: hooks that are off by default, S3 settings; helpers: their settings) */
  env?: Readonly<Record<string, string>>;
  /** start on this DATA_DIR and keep it on stop() (a restart on seeded data) instead of a fresh one */
  dataDir?: string;
  /** options for node itself, e.g. --cpu-prof */
  nodeArgs?: readonly string[];
};

/** Starts `name` with a fresh DATA_DIR (removed again by stop()), or on `options.dataDir` (kept). */
export async function startTarget(root: string, name: TargetName | Helper, options: StartOptions = {}): Promise<Running> {
  const keep = options.dataDir !== undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), `bench-${name}-`)));
  const token = randomBytes(24).toString('base64url');
  const spec: Spec =
    name === 'real'
      ? {
          entry: compile(root, name),
          env: { AUTH_SERVICE_TOKEN: token, QUOTA_DEFAULT_BYTES: String(1024 ** 4), ...options.env },
          headers: { 'X-Service-Token': token },
          nodeArgs: options.nodeArgs,
        }
      : { entry: compile(root, name), env: { ...options.env }, headers: {}, nodeArgs: options.nodeArgs };
  try {
    return await spawnAndWait(root, name, spec, dataDir, keep);
  } catch (error) {
    if (!keep) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function spawnAndWait(root: string, name: string, spec: Spec, dataDir: string, keep: boolean): Promise<Running> {
  const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), spec.entry], {
    cwd: root,
    env: { ...process.env, ...spec.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { exited, stop: stopProcess } = supervise(child);
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (s: string) => stderr.push(s));
  const stop = async (): Promise<void> => {
    await stopProcess();
    if (!keep) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const url = await waitForListening(child, exited, () => stderr.join('').slice(-2000));
    return { name, pid: child.pid!, url, dataDir, headers: spec.headers, stderr: () => stderr.join(''), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Registers a child for killAllSync() and gives the one way to stop it: SIGTERM by PID, then
 * SIGKILL after STOP_TIMEOUT_MS. Also for servers that are not Node entries (lib/caddy.ts).
 */
export function supervise(child: ChildProcess): { exited: Promise<void>; stop: () => Promise<void> } {
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));
  return { exited, stop: () => stopChild(child, exited) };
}

function waitForListening(child: ChildProcess, exited: Promise<void>, stderrTail: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const url = listeningUrl(line);
      if (url === null) return;
      clearTimeout(timer);
      resolve(url);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`exited with code ${child.exitCode} before listening: ${stderrTail().trim() || '(no stderr)'}`));
    });
  });
}

function listeningUrl(line: string): string | null {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { msg, url } = parsed as { msg?: unknown; url?: unknown };
    return msg === 'listening' && typeof url === 'string' ? url : null;
  } catch {
    return null;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  process.kill(child.pid, 'SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), delay(STOP_TIMEOUT_MS).then(() => true)]);
  if (timedOut && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

/** Last resort on Ctrl-C or a crash of the bench itself: kill what is still running, by PID. */
export function killAllSync(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
