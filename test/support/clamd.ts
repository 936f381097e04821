// A real clamd for tests: Debian's clamav-daemon (.ci/apt-packages) with a configuration and a
// signature database of the test's own in a fresh folder, listening on a Unix socket there (or on
// TCP, 127.0.0.1 and a free port, with `tcp`). No
// freshclam, no network: the database is one hand-written .ndb line matching the EICAR test string
// (clamd exits at once with an empty database folder). Started as our child; stop() kills that PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/free-port.ts';

const CLAMD = '/usr/sbin/clamd';
/** The EICAR anti-virus test file: harmless, and detected by every scanner. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
/** What clamd reports for it with our database (".UNOFFICIAL": not from ClamAV's own databases). */
export const EICAR_SIGNATURE = 'StreamLineEicarTest.UNOFFICIAL';
const START_TIMEOUT_MS = 60_000;

export interface ClamdProcess {
  /** The Unix socket ('' with `tcp`). */
  socket: string;
  address: { socket: string } | { host: string; port: number };
  /** CLAMD_SOCKET, or CLAMD_HOST and CLAMD_PORT, for the server under test. */
  env: Record<string, string>;
  pid: number;
  /** Kills clamd (the socket goes away: connections are refused). */
  stop(): Promise<void>;
  /** Starts it again on the same socket and database. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startClamd(options: { streamMaxLength?: string; tcp?: boolean } = {}): Promise<ClamdProcess> {
  if (!existsSync(CLAMD)) throw new Error(`clamd is not installed (${CLAMD}): apt-get install $(grep -v '^#' .ci/apt-packages)`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sl-clamd-'));
  const db = path.join(dir, 'db');
  await mkdir(db);
  await writeFile(path.join(db, 'streamline.ndb'), `StreamLineEicarTest:0:*:${Buffer.from(EICAR, 'latin1').toString('hex')}\n`);
  const socket = options.tcp ? '' : path.join(dir, 'clamd.sock');
  const address: ClamdProcess['address'] = options.tcp ? { host: '127.0.0.1', port: await freePort() } : { socket };
  const conf = path.join(dir, 'clamd.conf');
  await writeFile(conf, [
    'Foreground yes',
    'socket' in address ? `LocalSocket ${socket}` : `TCPSocket ${address.port}\nTCPAddr ${address.host}`,
    `DatabaseDirectory ${db}`,
    `PidFile ${path.join(dir, 'clamd.pid')}`,
    `LogFile ${path.join(dir, 'clamd.log')}`,
    `TemporaryDirectory ${dir}`,
    // Run as whoever runs the tests (root in CI would otherwise switch to the clamav user).
    `User ${os.userInfo().username}`,
    `StreamMaxLength ${options.streamMaxLength ?? '4M'}`,
    'MaxThreads 4',
    'LogTime no',
    '',
  ].join('\n'));

  let child: ChildProcess | undefined;
  const start = async () => {
    const started = spawn(CLAMD, ['--config-file', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(started);
    let stderr = '';
    started.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      started.once('exit', (code) => reject(new Error(`clamd exited with ${code}: ${stderr}${existsSync(path.join(dir, 'clamd.log')) ? '' : ''}`))),
    );
    exited.catch(() => {});
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (started.exitCode !== null) {
        const log = await readFile(path.join(dir, 'clamd.log'), 'utf8').catch(() => '');
        throw new Error(`clamd exited with ${started.exitCode}: ${stderr}\n${log}`);
      }
      if (await ping(address)) break;
      if (Date.now() > deadline) throw new Error(`clamd did not answer PING within ${START_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child = started;
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
    live.delete(running);
    if (socket) rmSync(socket, { force: true });
  };
  await start();
  return {
    socket,
    address,
    env: 'socket' in address ? { CLAMD_SOCKET: address.socket } : { CLAMD_HOST: address.host, CLAMD_PORT: String(address.port) },
    get pid() {
      return child?.pid ?? -1;
    },
    stop,
    restart: start,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function ping(address: ClamdProcess['address']): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = 'socket' in address ? net.createConnection(address.socket) : net.createConnection(address.port, address.host);
    let reply = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write('zPING\0'));
    conn.on('data', (d: string) => (reply += d));
    conn.on('close', () => resolve(reply.startsWith('PONG')));
    conn.on('error', () => resolve(false));
    conn.setTimeout(2000, () => conn.destroy());
  });
}
