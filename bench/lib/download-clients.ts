// The clients of the download benchmark (bench/sharing.ts), all outside this Node process so they
// do not share its event loop: curl writing to /dev/null, wrk for requests per second, and zip -0
// as the archive baseline.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './command.ts';

const DOWNLOAD_TIMEOUT_MS = 180_000;

export type Download = { status: number; bytes: number; ms: number };

/** One GET of `url` by curl into /dev/null; `ms` is curl's own time_total. */
export async function curlDownload(url: string, headers: Readonly<Record<string, string>> = {}): Promise<Download> {
  const args = ['-s', '-o', '/dev/null', '--max-time', String(DOWNLOAD_TIMEOUT_MS / 1000), '-w', '%{http_code} %{size_download} %{time_total}'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const done = await runCommand('curl', [...args, url], { timeoutMs: DOWNLOAD_TIMEOUT_MS + 5000 });
  const [status, bytes, seconds] = done.stdout.trim().split(' ').map(Number);
  if (done.code !== 0) throw new Error(`curl exited ${done.code} for ${url}: ${done.stderr.trim()}`);
  return { status: status!, bytes: bytes!, ms: seconds! * 1000 };
}

/** `count` curl downloads of `url` at once; `ms` is the wall time until the last one ended. */
export async function parallelDownloads(url: string, count: number): Promise<Download> {
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: count }, () => curlDownload(url)));
  const ms = performance.now() - t0;
  const failed = all.find((d) => d.status !== 200);
  return { status: failed?.status ?? 200, bytes: all.reduce((n, d) => n + d.bytes, 0), ms };
}

export type Load = { rps: number; p50Ms: number; p99Ms: number; requests: number; errors: number };

/**
 * `count` HEAD requests to `url`, one after another on one keep-alive connection, by one curl
 * process (wrk cannot: its parser waits for the Content-Length bytes a HEAD answer never sends).
 */
export async function curlHeads(url: string, count: number): Promise<{ rps: number; requests: number; ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-head-'));
  const config = join(dir, 'urls.conf');
  writeFileSync(config, `url = "${url}"\n`.repeat(count));
  const devNull = openSync('/dev/null', 'w');
  try {
    const done = await runCommand('curl', ['-s', '-f', '-I', '-K', config], { timeoutMs: DOWNLOAD_TIMEOUT_MS, stdoutFd: devNull });
    if (done.code !== 0) throw new Error(`curl -I exited ${done.code}: ${done.stderr.trim()}`);
    return { rps: count / (done.ms / 1000), requests: count, ms: done.ms };
  } finally {
    closeSync(devNull);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** wrk for `seconds` with `connections` on one thread (the server under test gets the other core). */
export async function wrk(url: string, seconds: number, connections: number): Promise<Load> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url];
  const done = await runCommand('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  if (done.code !== 0) throw new Error(`wrk exited ${done.code}: ${done.stderr.trim()}`);
  const out = done.stdout;
  const number = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = number(/Non-2xx or 3xx responses: (\d+)/) || 0;
  return {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: latencyMs(/^\s+50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)),
    p99Ms: latencyMs(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)),
    requests: number(/(\d+) requests in /),
    errors: errors + (socketErrors ? socketErrors.slice(1).reduce((n, s) => n + Number(s), 0) : 0),
  };
}

function latencyMs(m: RegExpExecArray | null): number {
  if (!m) return Number.NaN;
  const factor = { us: 1e-3, ms: 1, s: 1e3 }[m[2] as 'us' | 'ms' | 's'];
  return Number(m[1]) * factor;
}

export type ZipRun = { ms: number; cpuS: number };

/**
 * `zip -0 -q <out> <files…>` in `cwd` (out "-" with stdout to /dev/null). bash's `times` prints
 * the CPU its children used (zip), which Node cannot report for a child.
 */
export async function zipStore(cwd: string, files: readonly string[], out: string): Promise<ZipRun> {
  const devNull = openSync('/dev/null', 'w');
  try {
    // zip writes the archive to stdout when out is "-": send it to /dev/null, and `times` to stderr.
    const script = 'out=$1; shift; zip -0 -q "$out" "$@" || exit $?; times >&2';
    const done = await runCommand('bash', ['-c', script, 'bench-zip', out, ...files], {
      cwd,
      timeoutMs: DOWNLOAD_TIMEOUT_MS,
      stdoutFd: devNull,
    });
    if (done.code !== 0) throw new Error(`zip exited ${done.code}: ${done.stderr.trim()}`);
    // `times`: the shell's user/sys, then its children's, e.g. "0m1.234s 0m0.456s".
    const children = done.stderr.trim().split('\n').at(-1) ?? '';
    const cpuS = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((n, m) => n + Number(m[1]) * 60 + Number(m[2]), 0);
    return { ms: done.ms, cpuS };
  } finally {
    closeSync(devNull);
  }
}
