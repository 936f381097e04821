// Descriptors and memory of a server that meets the connections mobile networks and hostile
// clients really make: PATCHes cut after part of their body (close, RST, half-close) and PATCHes
// that send their headers and then nothing. Prints the server's open descriptors
// (/proc/<pid>/fd) and RSS before, at the peak and after it settled, for the code in `--root`
// (default: this checkout), so the same script measures an older checkout as the baseline:
//
//   node --import tsx bench/upload-aborts.ts                      # this checkout
//   node --import tsx bench/upload-aborts.ts --root /tmp/old-copy  # another one, same workload
//
// "Settled" is polled, not slept: the figure is taken once the count stops falling (or returns
// to its baseline), within --settle seconds.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readRss } from './lib/proc-stats.ts';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
    aborts: { type: 'string', default: '200' },
    stalled: { type: 'string', default: '1000' },
    'per-user': { type: 'string', default: '50' },
    idle: { type: 'string', default: '5' },
    settle: { type: 'string', default: '30' },
  },
});
const ABORTS = Number(args.aborts);
const STALLED = Number(args.stalled);
const PER_USER = Number(args['per-user']);
const SETTLE_MS = Number(args.settle) * 1000;
const SERVICE_TOKEN = 'bench-service-token-0123456789abcdef';
const KiB = 1024;
const UPLOAD_LENGTH = 1024 * KiB;

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(root: string, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'server/main.ts')], {
    cwd: root,
    env: {
      ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', AUTH_SERVICE_TOKEN: SERVICE_TOKEN,
      UPLOAD_IDLE_TIMEOUT_SECONDS: args.idle, LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', () => {
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return { child, url };
}

async function userToken(url: string, user: string): Promise<string> {
  const res = await fetch(`${url}/v1/files/generate-token?user_id=${user}&expires_hours=2`, {
    method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN },
  });
  return ((await res.json()) as { token: string }).token;
}

async function create(url: string, token: string): Promise<string> {
  const res = await fetch(`${url}/v1/uploads`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(UPLOAD_LENGTH) },
  });
  if (res.status !== 201) throw new Error(`creation answered ${res.status}: ${await res.text()}`);
  return res.headers.get('location')!;
}

function patchHead(uploadUrl: string, token: string): string {
  const { host, pathname } = new URL(uploadUrl);
  return [
    `PATCH ${pathname} HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${token}`, 'Tus-Resumable: 1.0.0',
    'Upload-Offset: 0', 'Content-Type: application/offset+octet-stream', `Content-Length: ${UPLOAD_LENGTH}`, '', '',
  ].join('\r\n');
}

async function connect(uploadUrl: string): Promise<net.Socket> {
  const { hostname, port } = new URL(uploadUrl);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return socket;
}

type AbortKind = 'close' | 'rst' | 'half-close';

/** Headers and up to 256 KiB of the body, then the connection ends the way `kind` says. */
async function abortedPatch(uploadUrl: string, token: string, kind: AbortKind, bodyBytes: number): Promise<void> {
  const socket = await connect(uploadUrl);
  socket.resume();
  await new Promise<void>((resolve) => socket.write(patchHead(uploadUrl, token), () => resolve()));
  await new Promise<void>((resolve) => socket.write(Buffer.alloc(bodyBytes, 7), () => resolve()));
  if (kind === 'rst') return void socket.resetAndDestroy();
  if (kind === 'close') return void socket.destroy();
  // Half-close: our side says FIN and keeps listening; whatever the server does next, we let go
  // of our end once it closed its own or after a moment (the server's count is what is measured).
  socket.end();
  await Promise.race([new Promise((r) => socket.once('close', r)), sleep(2000)]);
  socket.destroy();
}

/**
 * Polls until the count is back at `target` or stopped falling for the idle timeout plus 3 s
 * (requests admitted late stall for one more timeout), within SETTLE_MS.
 */
async function settle(pid: number, target: number): Promise<number> {
  const deadline = Date.now() + SETTLE_MS;
  let last = fds(pid);
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(200);
    const now = fds(pid);
    if (now <= target) return now;
    if (now < last) since = Date.now();
    last = now;
    if (Date.now() - since > Number(args.idle) * 1000 + 3000) break;
  }
  return fds(pid);
}

async function inBatches<T>(items: T[], width: number, run: (item: T, i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map((item, j) => run(item, i + j)));
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sl-bench-aborts-'));
  const { child, url } = await startServer(args.root!, dataDir);
  const pid = child.pid!;
  const rows: string[] = [];
  const row = (what: string, before: number, peak: number, after: number, rssBefore: number, rssAfter: number) =>
    rows.push(`| ${what} | ${before} | ${peak} | ${after} | ${mib(rssBefore)} | ${mib(rssAfter)} |`);
  try {
    const token = await userToken(url, 'aborter');
    await fetch(`${url}/healthz`);
    for (const kind of ['close', 'rst', 'half-close'] as AbortKind[]) {
      const urls: string[] = [];
      for (let i = 0; i < ABORTS; i++) urls.push(await create(url, token));
      const before = fds(pid);
      const rssBefore = readRss(pid).rss;
      let peak = before;
      await inBatches(urls, 10, async (u, i) => {
        await abortedPatch(u, token, kind, 1 + ((i * 7919) % (256 * KiB)));
        peak = Math.max(peak, fds(pid));
      });
      const after = await settle(pid, before);
      row(`${ABORTS} aborted PATCHes (${kind})`, before, peak, after, rssBefore, readRss(pid).rss);
    }

    const users = Math.ceil(STALLED / PER_USER);
    const tokens = await Promise.all(Array.from({ length: users }, (_, i) => userToken(url, `staller${i}`)));
    const targets: Array<{ url: string; token: string }> = [];
    for (let i = 0; i < STALLED; i++) {
      const t = tokens[Math.floor(i / PER_USER)]!;
      targets.push({ url: await create(url, t), token: t });
    }
    const before = fds(pid);
    const rssBefore = readRss(pid).rss;
    const sockets: net.Socket[] = [];
    let refused = 0;
    await inBatches(targets, 50, async ({ url: u, token: t }) => {
      const socket = await connect(u);
      socket.on('data', (d: Buffer) => {
        if (/^HTTP\/1\.1 429/.test(d.toString('latin1'))) refused++;
      });
      sockets.push(socket);
      socket.write(patchHead(u, t));
    });
    // Every request has reached the server once its count stops rising.
    let peak = fds(pid);
    for (let stable = 0; stable < 5; ) {
      await sleep(200);
      const now = fds(pid);
      stable = now > peak ? 0 : stable + 1;
      peak = Math.max(peak, now);
    }
    const rssPeak = readRss(pid).rss;
    const after = await settle(pid, before);
    const open = sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
    row(`${STALLED} stalled PATCHes (${PER_USER} per user, ${refused} answered 429)`, before, peak, after, rssBefore, rssPeak);
    rows.push(`| … RSS after settling; client sockets not closed yet when counted: ${open} | | | | | ${mib(readRss(pid).rss)} |`);
    for (const s of sockets) s.destroy();
  } finally {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`server code: ${args.root}; UPLOAD_IDLE_TIMEOUT_SECONDS=${args.idle}; settle window ${args.settle} s`);
  console.log('| workload | fds before | fds peak | fds after | RSS before, MiB | RSS after (stalled: at peak), MiB |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
