// A hostile JSON body of any size sent to a running server process, streamed from one reused
// 1 MiB buffer (chunked, or with its Content-Length declared), while the server's resident memory
// (/proc/<pid>/status VmRSS) is sampled and /healthz is polled. Used by body-limit.test.ts, and
// run on its own to print the figures for a server tree:
//
//   node --import tsx test/server/http/huge-body.ts <project root> [MiB]
//
// which starts `<root>/server/main.ts` on a free port, sends 256 MiB (by default) both ways to
// POST /v1/files/batch-download, and prints VmRSS before and at its peak.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const MiB = 1024 * 1024;

export interface HugeBodyOptions {
  url: string;
  /** The server's process id, whose VmRSS is sampled. */
  pid: number;
  headers: Record<string, string>;
  totalBytes: number;
  chunked: boolean;
  /** Gives up (destroys the request) once VmRSS grew by this much: a failing run stays cheap. */
  abortAboveBytes?: number;
}

export interface HugeBodyResult {
  status: number | undefined;
  body: string;
  /** Bytes the client had written when the answer (or the end) came. */
  sentBytes: number;
  baselineRssBytes: number;
  peakRssBytes: number;
  /** Status of every /healthz poll issued while the body was being sent (0: no answer). */
  healthz: number[];
  gaveUp: boolean;
}

export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

export async function sendHugeBody(options: HugeBodyOptions): Promise<HugeBodyResult> {
  const baselineRssBytes = rssBytes(options.pid);
  let peakRssBytes = baselineRssBytes;
  let gaveUp = false;
  let inFlight = true;
  const healthz: number[] = [];

  const chunk = Buffer.alloc(MiB, 0x20); // JSON whitespace: the body is "valid so far" forever
  const target = new URL(options.url);
  const req = http.request(target, {
    method: 'POST',
    headers: { ...options.headers, 'Content-Type': 'application/json', ...(options.chunked ? {} : { 'Content-Length': String(options.totalBytes) }) },
  });

  const sampler = setInterval(() => {
    try {
      peakRssBytes = Math.max(peakRssBytes, rssBytes(options.pid));
    } catch {
      return; // the process is gone; the request fails on its own
    }
    if (options.abortAboveBytes !== undefined && peakRssBytes - baselineRssBytes > options.abortAboveBytes && !gaveUp) {
      gaveUp = true;
      req.destroy(new Error('gave up: the server buffers the body'));
    }
  }, 10);

  const polling = (async () => {
    while (inFlight) {
      const res = await fetch(new URL('/healthz', target), { signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      healthz.push(res?.status ?? 0);
      await res?.arrayBuffer();
    }
  })();

  let sentBytes = 0;
  let answered = false;
  const answer = new Promise<{ status: number | undefined; body: string }>((resolve) => {
    req.once('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.once('end', () => resolve({ status: res.statusCode, body }));
      res.once('error', () => resolve({ status: res.statusCode, body }));
    });
    // Writes after the server answered and closed may fail (EPIPE, ECONNRESET): the answer counts.
    req.once('error', () => {
      if (!answered) resolve({ status: undefined, body: '' });
    });
  });
  const writing = (async () => {
    while (sentBytes < options.totalBytes && !answered && !req.destroyed) {
      const piece = chunk.subarray(0, Math.min(MiB, options.totalBytes - sentBytes));
      sentBytes += piece.length;
      if (!req.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            req.off('drain', done);
            req.off('close', done);
            req.off('response', done);
            resolve();
          };
          req.on('drain', done);
          req.on('close', done);
          req.on('response', done);
        });
      }
    }
    if (!answered && !req.destroyed) req.end();
  })();

  const { status, body } = await answer;
  inFlight = false;
  req.destroy();
  await writing;
  await polling;
  clearInterval(sampler);
  try {
    peakRssBytes = Math.max(peakRssBytes, rssBytes(options.pid));
  } catch {
    // gone
  }
  return { status, body, sentBytes, baselineRssBytes, peakRssBytes, healthz, gaveUp };
}

/** A fresh server process per run, so one run's garbage does not hide in the next one's baseline. */
async function measure(root: string, mebibytes: number, chunked: boolean): Promise<string> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sl-huge-body-'));
  const serviceToken = 'huge-body-service-token-0123456789';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'server/main.ts')], {
    cwd: root,
    env: { ...process.env, AUTH_SERVICE_TOKEN: serviceToken, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const look = (d: Buffer) => {
        out += d.toString();
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      };
      child.stdout!.on('data', look);
      child.stderr!.on('data', look);
      child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
    });
    const minted = await fetch(`${url}/v1/files/generate-token?user_id=huge`, { method: 'POST', headers: { 'X-Service-Token': serviceToken } });
    const { token } = (await minted.json()) as { token: string };
    const result = await sendHugeBody({
      url: `${url}/v1/files/batch-download`,
      pid: child.pid!,
      headers: { Authorization: `Bearer ${token}` },
      totalBytes: mebibytes * MiB,
      chunked,
    });
    const mib = (n: number) => (n / MiB).toFixed(0);
    return `${chunked ? 'chunked       ' : 'Content-Length'} ${mebibytes} MiB: status ${result.status}, sent ${mib(result.sentBytes)} MiB, ` +
      `VmRSS ${mib(result.baselineRssBytes)} -> peak ${mib(result.peakRssBytes)} MiB (+${mib(result.peakRssBytes - result.baselineRssBytes)}), ` +
      `/healthz polls ${result.healthz.length} [${[...new Set(result.healthz)].join(',')}]`;
  } finally {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const root = path.resolve(process.argv[2] ?? '.');
  for (const chunked of [false, true]) console.log(await measure(root, Number(process.argv[3] ?? 256), chunked));
}
