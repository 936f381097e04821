// Virus scanning (README "Virus scanning"): a durable queue in SQLite and a worker that streams
// each finished file from storage to clamd (server/scan/clamd.ts).
//
// A notification, never part of the answer (STYLE "hooks split by effect"): the final PATCH
// answers as soon as the file is recorded; its scan runs afterwards. What makes that safe is
// the queue: the file becomes 'ready' with scan_status 'pending' and its job in ONE transaction
// (markReady), so no crash can leave a ready file that nobody will scan, and the routes serve only
// 'clean' files while scanning is on (server/scan/gate.ts).
//
// The worker takes due jobs (at most SCAN_CONCURRENCY at once), marks them 'scanning', and records
// clamd's verdict — clean, infected (with the signature) or error (with clamd's reason) — with its
// file.scanned event, dropping the job, in one transaction. When the file could not be judged
// (clamd unreachable or silent, storage unreadable) the job is retried after a backoff that
// doubles from 1 s up to SCAN_RETRY_MAX_SECONDS, with jitter, and the file waits as 'pending'.
// It wakes on enqueue and on a timer set for the next due job.
//
// Start-up: a scan a crash interrupted ('scanning') waits again; ready files without a verdict
// (recorded while scanning was off, or committed by the start-up repair) are queued. Shutdown
// abandons a scan in flight: its job stays queued for the next start.
import type { Readable } from 'node:stream';
import type { FileRow } from '../server/db/repo.ts';
import type { ScanRepo, Verdict as VerdictStatus } from '../server/db/scan-repo.ts';
import { ClamdUnavailable, type Clamd, type Verdict } from '../server/scan/clamd.ts';
import type { HookDeps } from './deps.ts';

/** What finishing an upload needs (HookDeps.scan): the file's scan queued with its becoming ready. */
export interface ScanQueue {
  /** Runs `change` (the file becoming 'ready') and queues the file's scan, in one transaction. */
  enqueueWith(key: string, change: () => void): void;
}

export interface ScanListener {
  verdict?(status: VerdictStatus, seconds: number): void;
  /** A scan attempt that gave no verdict and will be retried. */
  retry?(reason: 'clamd' | 'storage'): void;
}

export interface Scanner extends ScanQueue {
  /** Resets interrupted scans, queues unscanned files, starts the worker. */
  start(): { interrupted: number; backfilled: number };
  /** Stops the worker; scans in flight are abandoned (their jobs stay) before this resolves. */
  stop(): Promise<void>;
  /** Files waiting for a verdict. */
  depth(): number;
  listen(listener: ScanListener): void;
}

export interface ScannerOptions {
  repo: ScanRepo;
  clamd: Clamd;
  /** SCAN_RETRY_MAX_SECONDS, in ms. */
  maxBackoffMs: number;
  concurrency?: number;
  random?: () => number;
}

/** clamd does the CPU work; two at once keeps it busy while one file is being read from storage. */
export const SCAN_CONCURRENCY = 2;
/** The timer's longest sleep: a safety net, since every enqueue wakes the worker anyway. */
const IDLE_POLL_MS = 30_000;
/** Floor of a timer wake-up: a due job is taken at once by the pump itself, never by a busy timer. */
const MIN_TIMER_MS = 20;
const FIRST_RETRY_MS = 1000;

/**
 * Makes a committed file visible. With scanning on, the same transaction marks it 'pending' and
 * queues its scan (hooks/finalize.ts calls this where it used to set 'ready').
 */
export function markReady(deps: HookDeps, file: FileRow): FileRow {
  const setReady = () => deps.repo.setFileState(file.key, 'ready');
  if (!deps.scan) {
    setReady();
    return { ...file, state: 'ready' };
  }
  deps.scan.enqueueWith(file.key, setReady);
  return { ...file, state: 'ready', scan_status: 'pending', scan_signature: null, scanned_at: null };
}

/** Backoff before retry number `attempts` (1, 2, …): 1 s doubling up to `maxMs`, then half to all of it at random. */
export function retryDelayMs(attempts: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, FIRST_RETRY_MS * 2 ** Math.min(attempts - 1, 40));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function createScanner(deps: HookDeps, options: ScannerOptions): Scanner {
  const { repo, clamd, maxBackoffMs } = options;
  const concurrency = options.concurrency ?? SCAN_CONCURRENCY;
  const random = options.random ?? Math.random;
  const listeners: ScanListener[] = [];
  const active = new Map<string, Promise<void>>();
  let stopped = true;
  let aborter = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  /** Whether the last attempt reached clamd; a change is logged once, not per file. */
  let clamdUp: boolean | undefined;

  function pump(): void {
    clearTimeout(timer);
    timer = undefined;
    if (stopped) return;
    while (active.size < concurrency) {
      const job = repo.take(deps.now());
      if (!job) break;
      const key = job.file.key;
      const run = scanOne(job.file, job.attempts)
        .catch((error: unknown) => deps.log.error({ err: error, key }, 'virus scan failed unexpectedly'))
        .finally(() => {
          active.delete(key);
          pump();
        });
      active.set(key, run);
    }
    if (active.size >= concurrency) return; // the next scan to end pumps again
    const next = repo.nextRunAt();
    const delay = next === null ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, Math.max(MIN_TIMER_MS, next - deps.now()));
    timer = setTimeout(pump, delay);
    timer.unref();
  }

  async function scanOne(file: FileRow, attempts: number): Promise<void> {
    const started = performance.now();
    let source: Readable | undefined;
    let verdict: Verdict;
    try {
      source = await deps.storage.openFile(file.key);
      verdict = await clamd.scan(source, aborter.signal);
    } catch (error) {
      source?.destroy();
      if (stopped) {
        repo.release(file.key);
        return;
      }
      if (deps.repo.getFile(file.key)?.state !== 'ready') return; // deleted meanwhile: its job went with it
      postpone(file, attempts + 1, error);
      return;
    }
    reachable(true);
    record(file, verdict, (performance.now() - started) / 1000);
  }

  function postpone(file: FileRow, attempts: number, error: unknown): void {
    const fromClamd = error instanceof ClamdUnavailable;
    if (fromClamd) reachable(false);
    const delay = retryDelayMs(attempts, maxBackoffMs, random);
    const reason = error instanceof Error ? error.message : String(error);
    repo.postpone(file.key, deps.now() + delay, reason);
    deps.log.warn(
      { event: 'scan.retry', key: file.key, attempts, retry_in_ms: delay, reason, ...(fromClamd ? {} : { err: error }) },
      fromClamd ? 'virus scan postponed: clamd gave no verdict' : 'virus scan postponed: the file could not be read',
    );
    for (const listener of listeners) listener.retry?.(fromClamd ? 'clamd' : 'storage');
  }

  function reachable(up: boolean): void {
    if (clamdUp === up) return;
    const wasDown = clamdUp === false;
    clamdUp = up;
    if (!up) {
      deps.log.warn({ clamd: clamd.address }, 'clamd is unreachable; files wait as pending');
      return;
    }
    if (!wasDown) return;
    // Files backing off while clamd was away need not wait out their delay.
    const due = repo.retryNow(deps.now());
    deps.log.info({ clamd: clamd.address, retrying: due }, 'clamd is reachable again');
  }

  function record(file: FileRow, verdict: Verdict, seconds: number): void {
    const status: VerdictStatus = verdict.kind;
    // infected: the signature clamd named; error: clamd's reason (both shown in the file record).
    const signature = verdict.kind === 'infected' ? verdict.signature : verdict.kind === 'error' ? verdict.message : null;
    const recorded = repo.transaction(() => {
      const updated = repo.record(file.key, status, signature, deps.now());
      if (updated) {
        deps.events.emit('file.scanned', file.upload_id, { key: file.key, user_id: file.user_id, scan_status: status, signature });
      }
      return updated;
    });
    if (!recorded) return;
    const line = { event: 'file.scanned', key: file.key, user_id: file.user_id, scan_status: status, signature, duration_ms: Math.round(seconds * 1000) };
    if (status === 'clean') deps.log.info(line, 'virus scan: clean');
    else deps.log.warn(line, status === 'infected' ? 'virus scan: infected, quarantined' : 'virus scan: clamd could not scan the file');
    for (const listener of listeners) listener.verdict?.(status, seconds);
  }

  return {
    enqueueWith(key, change) {
      repo.transaction(() => {
        change();
        repo.enqueue(key, deps.now());
      });
      // After the transaction has committed (it is synchronous); a stopped worker stays stopped.
      setImmediate(pump);
    },
    start() {
      const interrupted = repo.resetInterrupted();
      const backfilled = repo.backfill(deps.now());
      stopped = false;
      aborter = new AbortController();
      pump();
      return { interrupted, backfilled };
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      aborter.abort(new Error('the server is shutting down'));
      await Promise.allSettled([...active.values()]);
    },
    depth: () => repo.depth(),
    listen(listener) {
      listeners.push(listener);
    },
  };
}
