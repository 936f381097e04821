// A real PostgreSQL for tests: Debian's postgresql (15 on Debian 12; .ci/apt-packages), a fresh
// cluster made by initdb in a temp folder and served on a free loopback port, password-protected
// (scram-sha-256) with a password of its own. initdb and postgres refuse to run as root, so both run
// as the `postgres` user through runuser, in a folder that user owns. stop() signals the postmaster
// by its own PID (from postmaster.pid: runuser forks, so our child is not the postmaster); outage()
// stops it the same way and starts the same cluster again on the same port.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../helpers/free-port.ts';

// Debian installs each major version beside the others; the newest one present serves.
const BIN = newestPostgresBin() ?? '/usr/lib/postgresql/15/bin';
const REQUIRED = [`${BIN}/initdb`, `${BIN}/postgres`, '/usr/sbin/runuser', '/usr/bin/setpriv'];
// Generous: a start takes about a second, but initdb alone took 4 s on a 2-core machine busy with
// other builds; a server that crashes is reported at once, so only a hang waits this long.
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** Why PostgreSQL tests cannot run here (binaries absent), for `{ skip }`; undefined when they can. */
export const POSTGRES_MISSING: string | undefined = (() => {
  const missing = REQUIRED.filter((bin) => !existsSync(bin));
  return missing.length === 0
    ? undefined
    : `PostgreSQL is not installed (${missing.join(', ')} missing): apt-get install $(grep -v '^#' .ci/apt-packages)`;
})();

export interface PostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** The postmaster's PID. */
  pid: number;
  /** The folder holding the cluster (removed by stop()). */
  dir: string;
  /** Fast shutdown (clients are disconnected), waits for the exit, removes the folder. */
  stop(): Promise<void>;
  /**
   * An outage: fast shutdown (clients are disconnected), then, once `down` has settled, the same
   * cluster started again on the same port. The postmaster's PID changes.
   */
  outage(down: () => Promise<void>): Promise<void>;
}

// Postmasters still running in this process and their folders, for an exit without stop(). If the
// process dies harder, the kernel kills them (setpriv --pdeathsig in start below).
const live = new Map<number, string>();
process.on('exit', () => {
  for (const [pid, dir] of live) {
    try {
      process.kill(pid, 'SIGQUIT'); // immediate shutdown
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  }
});

export async function startPostgres(): Promise<PostgresServer> {
  if (POSTGRES_MISSING) throw new Error(POSTGRES_MISSING);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sl-postgres-'));
  const data = path.join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  let running: Postmaster | undefined;
  try {
    const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())) as [number, number];
    chownSync(dir, uid, gid);
    const pwfile = path.join(dir, 'password');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    chownSync(pwfile, uid, gid);
    await promisify(execFile)('runuser', ['-u', 'postgres', '--', `${BIN}/initdb`,
      '-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256',
      '--no-locale', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    rmSync(pwfile);

    const port = await freePort();
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    running = await launch(dir, port, url);
    live.set(running.pid, dir);
    const server: PostgresServer = {
      url,
      port,
      pid: running.pid,
      dir,
      async stop() {
        await running!.stop();
        live.delete(running!.pid);
        rmSync(dir, { recursive: true, force: true });
      },
      async outage(down) {
        await running!.stop();
        live.delete(running!.pid);
        try {
          await down();
        } finally {
          running = await launch(dir, port, url);
          live.set(running.pid, dir);
          server.pid = running.pid;
        }
      },
    };
    return server;
  } catch (error) {
    running?.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

interface Postmaster {
  pid: number;
  /** Fast shutdown, waits for the exit. */
  stop(): Promise<void>;
  kill(): void;
}

/** Starts the cluster in `dir`/data on `port` and waits until a client can log in. */
async function launch(dir: string, port: number, url: string): Promise<Postmaster> {
  const data = path.join(dir, 'data');
  let pid = -1;
  const log = openSync(path.join(dir, 'postgres.log'), 'a');
  // setpriv --pdeathsig: runuser dies with us, the postmaster with runuser (its backends follow).
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'runuser', '-u', 'postgres', '--',
    'setpriv', '--pdeathsig', 'KILL', '--', `${BIN}/postgres`, '-D', data, '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=', // TCP only: no socket file in a shared folder
    // Throwaway data: durability only costs time here.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
  ], { stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  try {
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => reject(new Error(`postgres exited with ${signal ?? code}`))));
    exited.catch(() => {});
    const polling = new AbortController();
    try {
      pid = await Promise.race([exited, waitUntilReady(url, data, polling.signal)]);
    } finally {
      polling.abort();
    }
  } catch (error) {
    const logText = await readFile(path.join(dir, 'postgres.log'), 'utf8').catch(() => '');
    if (pid > 0) process.kill(pid, 'SIGKILL');
    else child.kill('SIGKILL');
    throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${logText.split('\n').slice(-20).join('\n')}`, { cause: error });
  }
  return {
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(pid, 'SIGINT'); // fast shutdown
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), STOP_TIMEOUT_MS);
      await gone;
      clearTimeout(timer);
    },
    kill() {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    },
  };
}

/** A new, empty database on the server (each test file, suite or server its own); returns its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Polls until a real client can log in and run a query; returns the postmaster's PID. */
async function waitUntilReady(url: string, data: string, signal: AbortSignal): Promise<number> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!signal.aborted) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      // The first line of postmaster.pid is the postmaster's PID (written before it accepts connections).
      return Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no connection within ${START_TIMEOUT_MS} ms: ${(error as Error).message}`);
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return -1; // the server exited: the race in startPostgres has already failed
}

function newestPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((x, y) => Number(y) - Number(x)) : [];
  return versions.map((v) => `${root}/${v}/bin`).find((bin) => existsSync(`${bin}/initdb`));
}
