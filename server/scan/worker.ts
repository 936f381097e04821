// The virus-scan queue and its worker. A finished file gets scan_status 'pending' and a scan_jobs
// row in the same transaction that makes it 'ready' (hooks/finalize.ts through ScanQueue), so no
// file can be served unscanned and no job is lost to a crash. The final PATCH never waits: the
// worker takes due jobs afterwards, streaming each file from storage to clamd, and records the
// verdict (and the file.scanned event) in one transaction.
//
// Jobs go in batches: SCAN_CONCURRENCY runners, each taking up to SCAN_BATCH due jobs (at most
// SCAN_BATCH_BYTES of files, or one larger file) in one transaction, scanning them one after the
// other on its clamd session, and recording their verdicts in one transaction: a transaction per
// job taken and per verdict were a large part of the cost of scanning small files (bench/README.md).
// Smallest first, and the verdicts so far are recorded before a file larger than SCAN_BATCH_BYTES
// is scanned, so a large file never holds back the verdicts of small ones. A taken job is
// 'scanning' until its verdict is recorded; a crash at any point leaves it so, and the next start
// queues it again (below), or, with several instances, another takes it once its claim ends
// (SCAN_LEASE_MS): a verdict is only ever lost with the scan that found it, and redone.
//
// No verdict — clamd unreachable, silent for CLAMD_TIMEOUT_SECONDS, gone mid-answer, or the file
// unreadable in storage — is never a verdict: the job waits 1 s, 2 s, 4 s… up to
// SCAN_RETRY_MAX_SECONDS (with jitter) and the file stays 'pending'; when clamd answers again,
// files still waiting out a delay are retried at once. A verdict of 'error' (e.g. past clamd's
// StreamMaxLength) is final: the file is not served, and its owner may delete it or an operator
// requeue it.
// Start-up: 'scanning' rows left by a crash become 'pending' again, and ready files without a
// verdict (finished while scanning was off, or before a crash) are queued: backfill.
// Shutdown aborts the scans in flight (their jobs stay) so that closing never waits for clamd.
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ScanQueue } from './queue.ts';
import type { ClamdConfig } from '../config.ts';
import type { Repository } from '../db/contract.ts';
import type { FileRow } from '../db/repo.ts';
import type { TakenJob } from '../db/scan-repo.ts';
import type { Storage } from '../storage/types.ts';
import { createPump } from '../pump.ts';
import { retryDelayMs } from '../retry-delay.ts';
import { ClamdUnavailable, type Clamd, type Verdict } from './clamd.ts';

const SCAN_CONCURRENCY = 2;
/** Jobs a runner takes at once (see the top of this file). */
const SCAN_BATCH = 8;
const SCAN_BATCH_BYTES = 4 * 1024 * 1024;
/** The timer's longest sleep: a safety net, since every enqueue wakes the worker anyway. */
const IDLE_POLL_MS = 30_000;
/** Shortest timer: a due job is taken by the pump itself, never by a timer firing in a loop. */
const MIN_TIMER_MS = 20;
/** A scrape (sl_clamd_up) or a health check must not hang on a clamd that accepts and says nothing. */
const PROBE_PING_MS = 2000;
/**
 * How long a taken job stays claimed (another instance skips it meanwhile). A scan of any length
 * keeps its claim: the runner renews its batch's claims every third of a lease while it runs. So a
 * job whose instance died (a crash, a SIGKILL) is taken by another within one lease, instead of
 * its file answering scan_pending until a lease sized for the longest scan ends.
 */
const SCAN_LEASE_MS = 30_000;

export interface ScanWorker {
  /** For the lifecycle (HookDeps.scans): enqueue inside the transaction that makes a file ready. */
  readonly queue: ScanQueue;
  /** For /healthz: clamd's reachability and the queue, informational only. */
  health(): Promise<{ clamd: 'up' | 'down'; queue_depth: number }>;
  /** Resets interrupted scans, queues files without a verdict, then works until stopped. */
  start(): Promise<void>;
  /** Aborts the scans in flight (their jobs stay queued) and stops. */
  stop(): Promise<void>;
}

export interface ScanWorkerDeps {
  repo: Repository;
  storage: Storage;
  clamd: Clamd;
  config: Pick<ClamdConfig, 'maxBackoffMs'>;
  now: () => number;
  log: Logger;
  /** Where sl_scan_* and sl_clamd_up are registered. */
  registry: Registry;
  random?: () => number;
  /** The claim's lease; SCAN_LEASE_MS unless a test shortens it. */
  leaseMs?: number;
}

/** A scan that reached a verdict, waiting to be recorded. */
type Scanned = { file: FileRow; verdict: Verdict; seconds: number };

export function createScanWorker(deps: ScanWorkerDeps): ScanWorker {
  const { now, log, clamd } = deps;
  const repo = deps.repo.scans;
  const random = deps.random ?? Math.random;
  const leaseMs = deps.leaseMs ?? SCAN_LEASE_MS;

  const registers = [deps.registry];
  new Gauge({ name: 'sl_scan_queue_depth', help: 'Files waiting for their virus scan (queued, backing off, or being scanned)', registers, async collect() { this.set(await repo.depth()); } });
  new Gauge({
    name: 'sl_clamd_up',
    help: 'Whether clamd answered PING at this scrape (1) or not (0)',
    registers,
    async collect() {
      this.set((await clamd.ping(PROBE_PING_MS)) ? 1 : 0);
    },
  });
  const verdicts = new Counter({ name: 'sl_scans_total', help: 'Virus scan verdicts: clean, infected, error', labelNames: ['verdict'], registers });
  const retries = new Counter({ name: 'sl_scan_retries_total', help: 'Scan attempts that gave no verdict and were postponed: clamd (unreachable, silent, gone) or storage (file unreadable)', labelNames: ['reason'], registers });
  const duration = new Histogram({ name: 'sl_scan_duration_seconds', help: 'Time to stream one file through clamd', registers, buckets: [0.01, 0.05, 0.25, 1, 5, 30, 120, 600] });
  for (const verdict of ['clean', 'infected', 'error']) verdicts.inc({ verdict }, 0);
  for (const reason of ['clamd', 'storage']) retries.inc({ reason }, 0);

  const running = new Map<string, Promise<void>>();
  let aborter = new AbortController();
  /** Whether the last attempt reached clamd; a change is logged once, not per file. */
  let clamdUp: boolean | undefined;

  const pump = createPump(pass, (error) => {
    log.error({ err: error }, 'scan queue failed');
    pump.wakeIn(IDLE_POLL_MS);
  });

  async function pass(): Promise<void> {
    while (running.size < SCAN_CONCURRENCY) {
      const jobs = await takeBatch();
      if (jobs.length === 0) break;
      const key = jobs[0]!.file.key;
      const work = runBatch(jobs)
        .catch((error: unknown) => log.error({ err: error, keys: jobs.map((j) => j.file.key) }, 'virus scan failed unexpectedly'))
        .finally(() => {
          running.delete(key);
          pump.wake();
        });
      running.set(key, work);
    }
    // Full: the next scan to end pumps again. Otherwise sleep until the next job is due; jobs
    // being scanned are not due (take() and nextRunAt() skip them), so this never spins.
    if (running.size >= SCAN_CONCURRENCY) return;
    const next = await repo.nextRunAt();
    pump.wakeIn(next === null ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, Math.max(MIN_TIMER_MS, next - now())));
  }

  /** Up to SCAN_BATCH due jobs, each marked 'scanning', in one transaction. */
  function takeBatch(): Promise<TakenJob[]> {
    return deps.repo.atomically(async (tx) => {
      const jobs: TakenJob[] = [];
      let bytes = 0;
      while (jobs.length < SCAN_BATCH && bytes < SCAN_BATCH_BYTES) {
        const job = await tx.scans.take(now(), leaseMs);
        if (!job) break;
        jobs.push(job);
        bytes += job.file.size;
      }
      return jobs;
    });
  }

  async function runBatch(jobs: TakenJob[]): Promise<void> {
    // Every job of the batch stays claimed until the batch ends: one recorded, handed back or
    // postponed meanwhile is no longer claimed, and a renewal leaves it so.
    const keys = jobs.map((job) => job.file.key);
    const renewal = setInterval(() => renew(keys), leaseMs / 3);
    renewal.unref();
    try {
      const scanned: Scanned[] = [];
      for (const job of [...jobs].sort((a, b) => a.file.size - b.file.size)) {
        if (pump.stopped) {
          await repo.release(job.file.key); // not started: waits for the next start
          continue;
        }
        if (job.file.size > SCAN_BATCH_BYTES) await record(scanned.splice(0));
        const verdict = await scan(job.file, job.attempts);
        if (verdict) scanned.push(verdict);
      }
      await record(scanned);
    } finally {
      clearInterval(renewal);
    }
  }

  function renew(keys: readonly string[]): void {
    // A renewal that fails (the database away) is tried again at the next tick; the claims hold
    // for a whole lease from the last one that succeeded.
    repo.renew(keys, now() + leaseMs).catch((error: unknown) => log.warn({ err: error, keys }, 'virus scan claims could not be renewed'));
  }

  /** The file's verdict, or undefined when there is none (postponed, abandoned, or deleted meanwhile). */
  async function scan(file: FileRow, attempts: number): Promise<Scanned | undefined> {
    const started = performance.now();
    let source: Readable | undefined;
    let verdict: Verdict;
    try {
      // The recorded bytes as a range: a read stream sizes its buffers by what is left to read, so a
      // small file costs a buffer of its own size rather than a 1 MiB one, and no read past its end.
      source = await deps.storage.openFile(file.key, file.size > 0 ? { start: 0, end: file.size - 1 } : undefined);
      verdict = await clamd.scan(source, aborter.signal);
    } catch (error) {
      source?.destroy();
      if (pump.stopped) return void (await repo.release(file.key)); // abandoned: waits for the next start
      if ((await deps.repo.getFile(file.key))?.state !== 'ready') return undefined; // deleted meanwhile: its job went with it
      return void (await postpone(file, attempts + 1, error));
    }
    await reachable(true);
    return { file, verdict, seconds: (performance.now() - started) / 1000 };
  }

  async function postpone(file: FileRow, attempts: number, error: unknown): Promise<void> {
    const fromClamd = error instanceof ClamdUnavailable;
    if (fromClamd) await reachable(false);
    const wait = retryDelayMs(attempts, deps.config.maxBackoffMs, random);
    const reason = error instanceof Error ? error.message : String(error);
    await repo.postpone(file.key, now() + wait, reason);
    retries.inc({ reason: fromClamd ? 'clamd' : 'storage' });
    log.warn(
      { key: file.key, attempts, retry_in_ms: wait, error: reason, ...(fromClamd ? {} : { err: error }) },
      fromClamd ? 'virus scan did not run (clamd gave no verdict); will retry' : 'virus scan did not run (the file could not be read); will retry',
    );
  }

  async function reachable(up: boolean): Promise<void> {
    if (clamdUp === up) return;
    const wasDown = clamdUp === false;
    clamdUp = up;
    if (!up) return void log.warn({ clamd: clamd.address }, 'clamd is unreachable; files wait as pending');
    if (!wasDown) return;
    // Files backing off while clamd was away need not wait out their delay.
    log.info({ clamd: clamd.address, retrying: await repo.retryNow(now()) }, 'clamd is reachable again');
  }

  /** The verdicts and their file.scanned events, in one transaction. */
  async function record(scanned: Scanned[]): Promise<void> {
    if (scanned.length === 0) return;
    const recorded = await deps.repo.atomically(async (tx) => {
      const kept: Scanned[] = [];
      for (const one of scanned) {
        const { verdict } = one;
        const signature = verdict.status === 'infected' ? verdict.signature : null;
        const current = await tx.scans.record(one.file.key, verdict.status, signature, now());
        if (!current) continue; // deleted while it was being scanned
        await tx.outbox.emit('file.scanned', current.upload_id, {
          upload_id: current.upload_id, key: current.key, user_id: current.user_id, scan_status: verdict.status, signature,
        });
        kept.push(one);
      }
      return kept;
    });
    for (const { file, verdict, seconds } of recorded) {
      verdicts.inc({ verdict: verdict.status });
      duration.observe(seconds);
      const context = { event: 'file.scanned', key: file.key, user_id: file.user_id, scan_status: verdict.status, seconds };
      if (verdict.status === 'infected') log.warn({ ...context, signature: verdict.signature }, 'virus found; the file is quarantined');
      else if (verdict.status === 'error') log.error({ ...context, error: verdict.message }, 'clamd could not scan the file');
      else log.info(context, 'file scanned');
    }
  }

  return {
    queue: {
      enabled: true,
      async enqueue(tx, key) {
        await tx.scans.enqueue(key, now());
        tx.afterCommit(pump.wake);
      },
    },
    async health() {
      return { clamd: (await clamd.ping(PROBE_PING_MS)) ? 'up' : 'down', queue_depth: await repo.depth() };
    },
    async start() {
      await deps.repo.atomically(async (tx) => {
        await tx.scans.resetInterrupted(now());
        await tx.scans.backfill(now());
      });
      aborter = new AbortController();
      pump.start();
    },
    async stop() {
      const passEnded = pump.stop();
      aborter.abort(new Error('the server is shutting down'));
      await Promise.allSettled([...running.values()]);
      await passEnded;
      clamd.close();
    },
  };
}
