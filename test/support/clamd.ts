// A real clamd for tests: Debian's /usr/sbin/clamd (.ci/apt-packages: clamav-daemon) with a config
// of our own in a temp folder — Unix socket (or TCP on a free loopback port), no freshclam: the
// database is one hand-written signature for the EICAR test string. Runs in the foreground as a
// child whose PID we keep; stop() kills exactly that process.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClamd } from '../../server/scan/clamd.ts';

const CLAMD = '/usr/sbin/clamd';
/** clamd loads one signature in about a second; a busy 2-core machine may take much longer. */
const START_TIMEOUT_MS = 60_000;

/** The standard antivirus test file (eicar.org): harmless, and detected by every scanner. */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
/** What clamd calls a match of our hand-written signature (user signatures are "UNOFFICIAL"). */
export const EICAR_SIGNATURE = 'EicarTest.UNOFFICIAL';

export interface ClamdOptions {
  /** clamd's StreamMaxLength, e.g. '100K' (clamd's own default is 100M). */
  streamMaxLength?: string;
  /** Listen on TCP (127.0.0.1, a free port) instead of a Unix socket. */
  tcp?: boolean;
}

export interface ClamdServer {
  /** For the server's configuration: CLAMD_SOCKET, or CLAMD_HOST + CLAMD_PORT. */
  env: Record<string, string>;
  address: { socket: string } | { host: string; port: number };
  /** The running clamd's PID, or null while stopped. */
  readonly pid: number | null;
  /** Kills our clamd and waits for it to exit; the folder stays for start(). */
  stop(): Promise<void>;
  /** Starts it again with the same configuration and address. */
  start(): Promise<void>;
  /** stop(), then removes the folder. */
  remove(): Promise<void>;
}

// A test that forgets remove() must not leave a daemon behind.
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export async function startClamd(options: ClamdOptions = {}): Promise<ClamdServer> {
  if (!existsSync(CLAMD)) throw new Error(`clamd is not installed (${CLAMD} missing): apt-get install clamav-daemon`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clamd-'));
  dirs.add(dir);
  await mkdir(path.join(dir, 'db'));
  // An .ndb line: name, target type (0 = any file), offset (* = anywhere), hex of the bytes.
  await writeFile(path.join(dir, 'db', 'test.ndb'), `EicarTest:0:*:${EICAR.toString('hex')}\n`);
  const address: ClamdServer['address'] = options.tcp ? { host: '127.0.0.1', port: await freePort() } : { socket: path.join(dir, 'clamd.sock') };
  const conf = [
    'Foreground yes',
    'socket' in address ? `LocalSocket ${address.socket}` : `TCPSocket ${address.port}\nTCPAddr ${address.host}`,
    `DatabaseDirectory ${path.join(dir, 'db')}`,
    `TemporaryDirectory ${dir}`,
    `LogFile ${path.join(dir, 'clamd.log')}`,
    `PidFile ${path.join(dir, 'clamd.pid')}`,
    // Runs as whoever starts it (root in CI): no `User`, so every file above stays readable.
    ...(options.streamMaxLength ? [`StreamMaxLength ${options.streamMaxLength}`] : []),
  ].join('\n');
  await writeFile(path.join(dir, 'clamd.conf'), `${conf}\n`);

  let child: ChildProcess | null = null;
  let output = '';
  const server: ClamdServer = {
    env: 'socket' in address ? { CLAMD_SOCKET: address.socket } : { CLAMD_HOST: address.host, CLAMD_PORT: String(address.port) },
    address,
    get pid() {
      return child?.pid ?? null;
    },
    async start() {
      if (child) return;
      output = '';
      const started = spawn(CLAMD, ['-c', path.join(dir, 'clamd.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      live.add(started);
      started.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      started.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<never>((_, reject) => {
        started.once('exit', (code, signal) => reject(new Error(`clamd exited with ${signal ?? code}`)));
        started.once('error', reject);
      });
      exited.catch(() => {});
      started.once('exit', () => {
        live.delete(started);
        if (child === started) child = null;
      });
      try {
        await Promise.race([exited, untilPong(address)]);
      } catch (error) {
        const log = await readFile(path.join(dir, 'clamd.log'), 'utf8').catch(() => '(no log)');
        await server.stop();
        throw new Error(`clamd did not start: ${(error as Error).message}\n${output}\n--- clamd.log\n${log.split('\n').slice(-20).join('\n')}`);
      }
    },
    async stop() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) {
        child = null;
        return;
      }
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      child = null;
    },
    async remove() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
  await server.start();
  return server;
}

async function untilPong(address: ClamdServer['address']): Promise<void> {
  const clamd = createClamd({ address, timeoutMs: 2000 });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await clamd.ping()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no PONG after ${START_TIMEOUT_MS} ms`);
}

/** A port the kernel hands out for port 0, released just before clamd binds it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
