// A real S3 server for tests: a one-node OpenStack Swift with s3api (Debian 12 packages, see
// .ci/apt-packages), written into a fresh folder and started as child processes on free loopback
// ports. No systemd, no daemons: every server is a child whose PID we keep and kill in stop().
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../server/storage/s3-client.ts';
import {
  ringBuilderScript, SERVER_WRAPPER, SWIFT_ACCESS_KEY_ID, SWIFT_DEVICE, SWIFT_SECRET_ACCESS_KEY,
  swiftConf, swiftConfFiles, type SwiftLayout, type SwiftPorts, type SwiftRole,
} from './swift-config.ts';

export interface SwiftServer {
  /** `http://127.0.0.1:PORT`, the proxy; use path-style addressing. */
  endpoint: string;
  region: 'us-east-1';
  accessKeyId: string;
  secretAccessKey: string;
  /** Kills every server and waits for them to exit; removes the folder unless the caller gave it. */
  stop(): Promise<void>;
  pids: number[];
}

// Debian's Python, not whichever python3 is first on PATH (pyenv, venvs lack the swift module).
const PYTHON = '/usr/bin/python3';
const ROLES: readonly SwiftRole[] = ['account', 'container', 'object', 'proxy'];
const MEMCACHED = '/usr/bin/memcached';
// eventlet's green DNS imports dnspython and httpx: over a second of CPU per process, most of the
// start-up time. Everything here speaks to 127.0.0.1, so no name is ever resolved.
const PYTHON_ENV = { ...process.env, EVENTLET_NO_GREENDNS: 'yes' };
// Generous: a start takes 2–5 s, but 14 s was seen on a 2-core machine busy with other builds; a
// server that crashes is reported at once, so only a hang waits this long.
const START_TIMEOUT_MS = 60_000;

// Children of every Swift still running in this process, killed (and the folders we made removed) if
// the process exits without stop(). The kernel kills them too if it dies harder: see SERVER_WRAPPER.
const live = new Set<ChildProcess>();
const ownDirs = new Set<string>();
const names = new WeakMap<ChildProcess, string>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of ownDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});

/**
 * Free ports are found by binding port 0 and closing it again, so another process on the machine
 * can take one before Swift binds it (assertOnlyOursListen below sees that). Then Swift starts
 * again on other ports, this many times at most. Not with a given `dir`: its rings name the ports.
 */
const PORT_ATTEMPTS = 3;

/** Another process listens on a port chosen for Swift. */
class PortTaken extends Error {}

export async function startSwift(opts: { dir?: string } = {}): Promise<SwiftServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSwiftOnce(opts);
    } catch (err) {
      if (opts.dir !== undefined || attempt >= PORT_ATTEMPTS || !((err as Error).cause instanceof PortTaken)) throw err;
    }
  }
}

async function startSwiftOnce(opts: { dir?: string }): Promise<SwiftServer> {
  const bins = [...ROLES.map((role) => `/usr/bin/swift-${role}-server`), MEMCACHED];
  const missing = bins.filter((bin) => !existsSync(bin));
  if (missing.length > 0) {
    throw new Error(`Swift is not installed (${missing.join(', ')} missing): apt-get install $(grep -v '^#' .ci/apt-packages)`);
  }
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'swift-')));
  if (!opts.dir) ownDirs.add(dir);
  const layout: SwiftLayout = {
    swiftDir: path.join(dir, 'etc'),
    devicesDir: path.join(dir, 'srv'),
    ports: await freePorts(),
    user: os.userInfo().username,
  };
  const children: ChildProcess[] = [];
  const swift: SwiftServer = {
    endpoint: `http://127.0.0.1:${layout.ports.proxy}`,
    region: 'us-east-1',
    accessKeyId: SWIFT_ACCESS_KEY_ID,
    secretAccessKey: SWIFT_SECRET_ACCESS_KEY,
    pids: [],
    async stop() {
      await Promise.all(children.map(killChild));
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
      ownDirs.delete(dir);
    },
  };

  try {
    await mkdir(layout.swiftDir, { recursive: true });
    await mkdir(path.join(layout.devicesDir, SWIFT_DEVICE), { recursive: true });
    await writeFile(path.join(layout.swiftDir, 'swift.conf'), swiftConf(randomBytes(16).toString('hex')));
    for (const [name, text] of Object.entries(swiftConfFiles(layout))) {
      await writeFile(path.join(layout.swiftDir, name), text);
    }
    await promisify(execFile)(PYTHON, ['-c', ringBuilderScript(layout)], { env: PYTHON_ENV });

    const memcachedArgs = ['-l', '127.0.0.1', '-p', String(layout.ports.memcached), '-U', '0', '-m', '16', '-u', layout.user];
    children.push(spawnLogged(dir, 'memcached', ['exec', MEMCACHED, ...memcachedArgs]));
    for (const role of ROLES) {
      const conf = path.join(layout.swiftDir, `${role}-server.conf`);
      children.push(spawnLogged(dir, role, ['swift', layout.swiftDir, `/usr/bin/swift-${role}-server`, conf, '-v']));
    }
    for (const child of children) {
      if (child.pid === undefined) throw new Error('a server could not be spawned');
      swift.pids.push(child.pid);
    }
    const exited = whenAnyExits(children);
    exited.catch(() => {}); // also rejects when stop() kills the servers, long after the race below
    const polling = new AbortController();
    try {
      await Promise.race([exited, waitUntilReady(swift, layout.ports, polling.signal)]);
    } finally {
      polling.abort();
    }
    await assertOnlyOursListen(layout.ports, swift.pids);
  } catch (err) {
    const logs = await logTails(dir);
    await swift.stop();
    throw new Error(`Swift did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return swift;
}

/** Starts a program through SERVER_WRAPPER, stdout and stderr appended to <dir>/<name>.log. */
function spawnLogged(dir: string, name: string, wrapperArgs: string[]): ChildProcess {
  const log = openSync(path.join(dir, `${name}.log`), 'a');
  const child = spawn(PYTHON, ['-c', SERVER_WRAPPER, String(process.pid), ...wrapperArgs], { stdio: ['ignore', log, log], env: PYTHON_ENV });
  closeSync(log);
  names.set(child, name);
  live.add(child);
  child.on('exit', () => live.delete(child));
  child.on('error', () => live.delete(child));
  // A test that forgets stop() must not hang its process; the 'exit' handler above still kills them.
  child.unref();
  return child;
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function whenAnyExits(children: ChildProcess[]): Promise<never> {
  return new Promise((_, reject) => {
    for (const child of children) {
      const name = names.get(child);
      child.once('exit', (code, signal) => reject(new Error(`${name} (pid ${child.pid}) exited with ${signal ?? code}`)));
      child.once('error', (err) => reject(err));
    }
  });
}

/** Ports the kernel hands out for port 0, released just before Swift binds them. */
async function freePorts(): Promise<SwiftPorts> {
  const servers = await Promise.all(
    [...ROLES, 'memcached'].map(
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  // Held open together so they all differ; closed together right before the servers start.
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  const [account, container, object, proxy, memcached] = ports as [number, number, number, number, number];
  return { account, container, object, proxy, memcached };
}

/** Polls every server's /healthcheck, then S3 ListBuckets through the proxy, until `signal` aborts. */
async function waitUntilReady(swift: SwiftServer, ports: SwiftPorts, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError: unknown;
  const pending = new Set(ROLES);
  const s3 = createS3Client({ ...swift, forcePathStyle: true });
  try {
    while (Date.now() < deadline && !signal.aborted) {
      try {
        for (const role of pending) {
          const res = await fetch(`http://127.0.0.1:${ports[role]}/healthcheck`, { signal });
          if (res.status !== 200) throw new Error(`${role} healthcheck answered ${res.status}`);
          pending.delete(role);
        }
        await s3.send(new ListBucketsCommand({}), { abortSignal: signal });
        return;
      } catch (err) {
        lastError = err;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    s3.destroy();
  }
  throw new Error(`not ready after ${START_TIMEOUT_MS} ms: ${(lastError as Error)?.message ?? lastError}`);
}

/**
 * Swift sets SO_REUSEPORT on its listening sockets, so a port someone else also listens on with that
 * flag is shared silently and requests would go astray. Every listening socket on our ports must
 * belong to one of our processes.
 */
async function assertOnlyOursListen(ports: SwiftPorts, pids: number[]): Promise<void> {
  const wanted = new Set(Object.values(ports));
  const listeners = new Map<string, number>(); // socket inode → port
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      const port = parseInt(fields[1]?.split(':')[1] ?? '', 16);
      // fields[3] is the state, 0A = LISTEN; fields[9] the socket inode.
      if (fields[3] === '0A' && wanted.has(port) && fields[9]) listeners.set(fields[9], port);
    }
  }
  const ours = new Set<string>();
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) ours.add(inode);
    }
  }
  const foreign = [...listeners].filter(([inode]) => !ours.has(inode)).map(([, port]) => port);
  if (foreign.length > 0) throw new PortTaken(`another process also listens on port(s) ${[...new Set(foreign)].join(', ')}`);
  const listening = new Set(listeners.values());
  const silent = [...wanted].filter((port) => !listening.has(port));
  if (silent.length > 0) throw new Error(`nothing listens on port(s) ${silent.join(', ')}`);
}

async function logTails(dir: string, lines = 20): Promise<string> {
  const tails = await Promise.all(
    [...ROLES, 'memcached'].map(async (name) => {
      const text = await readFile(path.join(dir, `${name}.log`), 'utf8').catch(() => '(no log)');
      // Swift logs tracebacks as one line with #012 for newlines; keep their ends, where the error is.
      const tail = (text.trimEnd() || '(empty)').split('\n').slice(-lines).map((line) => (line.length > 600 ? `…${line.slice(-600)}` : line));
      return `--- ${name}.log (last ${lines} lines)\n${tail.join('\n')}`;
    }),
  );
  return tails.join('\n');
}
