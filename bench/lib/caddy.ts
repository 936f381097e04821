// Caddy's file_server as the baseline for downloads: Debian's /usr/bin/caddy, run in the
// foreground with a Caddyfile in a temp dir (no admin endpoint, no autosave, plain http on a
// loopback port), its XDG dirs in that temp dir too, stopped by PID like every other target.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/free-port.ts';
import { supervise } from './targets.ts';

export const CADDY = '/usr/bin/caddy';
const READY_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 3;

export type Caddy = { pid: number; url: string; version: string; stop: () => Promise<void> };

/** Why Caddy cannot be measured, or null. */
export function caddyUnavailable(): string | null {
  return existsSync(CADDY) ? null : `${CADDY} is missing (apt-get install -y caddy)`;
}

/** Serves `root` read-only at the returned url; retries when another process takes the port first. */
export async function startCaddy(root: string): Promise<Caddy> {
  let last: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    try {
      return await startOnce(root, await freePort());
    } catch (error) {
      last = error;
    }
  }
  throw last;
}

async function startOnce(root: string, port: number): Promise<Caddy> {
  const home = await mkdtemp(join(tmpdir(), 'bench-caddy-'));
  // `admin off`: nothing listens but the site. (Caddy 2.6's Caddyfile has no persist_config; what
  // it may write goes to the temp XDG dirs, removed by stop().)
  const caddyfile = [
    '{',
    '\tadmin off',
    '\tauto_https off',
    '}',
    `http://127.0.0.1:${port} {`,
    `\troot * ${JSON.stringify(root)}`,
    '\tfile_server',
    '}',
    '',
  ].join('\n');
  const config = join(home, 'Caddyfile');
  await writeFile(config, caddyfile);
  const child = spawn(CADDY, ['run', '--config', config, '--adapter', 'caddyfile'], {
    cwd: home,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_CONFIG_HOME: join(home, 'config') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const { exited, stop: stopProcess } = supervise(child);
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (s: string) => stderr.push(s));
  const stop = async (): Promise<void> => {
    await stopProcess();
    await rm(home, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilAnswering(url, exited, () => stderr.join('').slice(-1500));
    return { pid: child.pid!, url, version: await caddyVersion(), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Any HTTP answer (404 for "/": no index) means the site is up; bounded by READY_TIMEOUT_MS. */
async function waitUntilAnswering(url: string, exited: Promise<void>, stderrTail: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (gone) throw new Error(`caddy exited before answering: ${stderrTail().trim() || '(no stderr)'}`);
    if (await answers(url)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`caddy did not answer within ${READY_TIMEOUT_MS} ms`);
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(true));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

function caddyVersion(): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const child = spawn(CADDY, ['version'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.once('error', () => resolve('unknown'));
    child.once('exit', () => resolve(out.trim().split(/\s/)[0] || 'unknown'));
  });
}
