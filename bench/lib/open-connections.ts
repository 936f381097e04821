// Many uploads in flight at once, each stalled mid-PATCH (a phone on a slow or sleeping link):
// what each open connection costs the server in memory. Each connection sends a PATCH's headers
// and its first bytes, then holds; the server's RSS with all of them open, minus its RSS just
// before, divided by their number, is the memory per connection.
import http from 'node:http';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { BLOCK } from './payload.ts';
import { readRss } from './proc-stats.ts';
import type { Live } from './inspector.ts';
import type { Running } from './targets.ts';
import { createUpload, patch } from './tus-client.ts';

/** What each held PATCH declares (Content-Length) and what it actually sends before holding. */
const DECLARED = 1024 * 1024;
const SENT = 64;
const WARM_UPLOADS = 50;
const WARM_BYTES = 16 * 1024;
const HOLD_TIMEOUT_MS = 60_000;

export type HeldSample = {
  connections: number;
  /** the idle server, before the uploads were created */
  rssStart: number;
  rssBefore: number;
  /** with the first half of the connections held: the second half's growth is free of the creations' garbage */
  rssHalf: number;
  rssHeld: number;
  /** heap used + external after a full GC (lib/inspector.ts), before and with all held */
  liveBefore: number;
  liveHeld: number;
  /** file descriptors the server opened for them (a socket each, and whatever the path keeps open) */
  fdDelta: number;
  /** the first answer a held PATCH got before it was released (it was then not held), or '' */
  problem: string;
};

/** Uploads holdOpenPatches creates for `count` connections, all by one user (the real server's per-user limits must allow them). */
export const uploadsCreated = (count: number): number => count + WARM_UPLOADS;

export const bytesPerConnection = (s: HeldSample): number => (s.rssHeld - s.rssBefore) / s.connections;
export const liveBytesPerConnection = (s: HeldSample): number => (s.liveHeld - s.liveBefore) / s.connections;
export const bytesPerConnectionSecondHalf = (s: HeldSample): number => (s.rssHeld - s.rssHalf) / (s.connections - Math.floor(s.connections / 2));

/** Creates `count` uploads, warms the PATCH path up, then holds `count` PATCHes open at once. */
export async function holdOpenPatches(server: Running, count: number, live: () => Promise<Live>): Promise<HeldSample> {
  const liveBytes = async (): Promise<number> => {
    const l = await live();
    return l.heapUsed + l.external;
  };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const sockets: net.Socket[] = [];
  const rssStart = readRss(server.pid).rss;
  try {
    const uploads = await inBatches(uploadsCreated(count), 16, (i) => createUpload(server.url, server.headers, DECLARED, `held-${i}.bin`, agent));
    // The PATCH path runs a few times before the "before" figure, so lazily loaded modules and
    // compiled code are not counted as per-connection memory. Small bodies: megabytes of buffers
    // passing through would leave garbage whose collection lands inside the measurement.
    for (const upload of uploads.slice(count)) await patch(upload, 0, WARM_BYTES, agent);
    agent.destroy();
    await settle(server.pid, 1500);
    const liveBefore = await liveBytes();
    const rssBefore = readRss(server.pid).rss;
    const fdBefore = fdCount(server.pid);
    const { hostname, port } = new URL(server.url);
    let problem = '';
    const early = (line: string): void => void (problem ||= `a held PATCH was answered: ${line}`);
    const half = Math.floor(count / 2);
    const hold = async (from: number, to: number): Promise<number> => {
      for (let i = from; i < to; i += 50) {
        const batch = uploads.slice(i, Math.min(i + 50, to));
        sockets.push(...(await Promise.all(batch.map((u) => openPatch(hostname.replace(/^\[|\]$/g, ''), Number(port), u.url, server.headers, early)))));
      }
      await waitForFds(server.pid, fdBefore + to);
      await settle(server.pid, 1500);
      return readRss(server.pid).rss;
    };
    const rssHalf = await hold(0, half);
    const rssHeld = await hold(half, count);
    const liveHeld = await liveBytes();
    return { connections: count, rssStart, rssBefore, rssHalf, rssHeld, liveBefore, liveHeld, fdDelta: fdCount(server.pid) - fdBefore, problem };
  } finally {
    agent.destroy();
    for (const s of sockets) s.destroy();
  }
}

/** A raw PATCH on its own socket: the head and SENT bytes of a DECLARED-byte body, then nothing. */
function openPatch(host: string, port: number, url: string, headers: Readonly<Record<string, string>>, early: (line: string) => void): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const { pathname } = new URL(url);
    const lines = [
      `PATCH ${pathname} HTTP/1.1`,
      `Host: ${host}:${port}`,
      'Tus-Resumable: 1.0.0',
      'Upload-Offset: 0',
      'Content-Type: application/offset+octet-stream',
      `Content-Length: ${DECLARED}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      '',
      '',
    ];
    const socket = net.connect({ host, port }, () => {
      socket.setNoDelay(true);
      socket.write(lines.join('\r\n'));
      socket.write(BLOCK.subarray(0, SENT));
      resolve(socket);
    });
    // An answer (an error) ends the hold: the figure would then be wrong, so it is reported.
    socket.once('data', (d) => early(d.toString('latin1').split('\r\n')[0] ?? ''));
    socket.on('error', reject); // after resolve: a reset is ignored (the hold is over anyway)
  });
}

async function inBatches<T>(n: number, concurrency: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await make(i);
    }
  }));
  return out;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function waitForFds(pid: number, atLeast: number): Promise<void> {
  const deadline = performance.now() + HOLD_TIMEOUT_MS;
  while (fdCount(pid) < atLeast) {
    if (performance.now() > deadline) throw new Error(`server holds ${fdCount(pid)} descriptors, expected at least ${atLeast}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until RSS has not moved by more than 1% for `quietMs` (bounded), so the figure is not mid-allocation. */
async function settle(pid: number, quietMs: number): Promise<void> {
  const deadline = performance.now() + HOLD_TIMEOUT_MS;
  let last = readRss(pid).rss;
  let since = performance.now();
  while (performance.now() - since < quietMs && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = readRss(pid).rss;
    if (Math.abs(now - last) > last * 0.01) {
      last = now;
      since = performance.now();
    }
  }
}
