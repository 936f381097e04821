// The virus-scan queue and its worker. A finished file gets scan_status 'pending' and a scan_jobs
// row in the same transaction that makes it 'ready' (hooks/finalize.ts through ScanQueue), so no
// file can be served unscanned and no job is lost to a crash. The final PATCH never waits: the
// worker takes due jobs afterwards, SCAN_CONCURRENCY at a time, streaming each file from storage
// to clamd, and records the verdict (and the file.scanned event) in one transaction.
//
// clamd unreachable: the job waits 1 s, 2 s, 4 s… up to SCAN_RETRY_MAX_SECONDS (with jitter) and
// the file stays 'pending'. A verdict of 'error' (e.g. past clamd's StreamMaxLength) is final: the
// file is not served, and its owner may delete it or an operator requeue it.
// Start-up: 'scanning' rows left by a crash become 'pending' again, and ready files without a
// verdict (finished while scanning was off, or before a crash) are queued: backfill.
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EventSink, ScanQueue } from '../../hooks/deps.ts';
import type { ClamdConfig } from '../config.ts';
import type { Db } from '../db/open.ts';
import type { FileRow } from '../db/repo.ts';
import type { Storage } from '../storage/types.ts';
import { ClamdUnavailable, type Clamd, type Verdict } from './clamd.ts';

const SCAN_CONCURRENCY = 2;
const FIRST_BACKOFF_MS = 1000;
const POLL_MS = 1000;
/** Connections clamd accepted and then cut mid-stream, before that counts as an 'error' verdict. */
const CUT_ATTEMPTS = 3;

interface Job {
  key: string;
  attempts: number;
}

export interface ScanWorker {
  /** For the lifecycle (HookDeps.scans): enqueue inside the transaction that makes a file ready. */
  readonly queue: ScanQueue;
  /** Registers sl_scan_* and sl_clamd_up (the registry is made after the services). */
  attachMetrics(registry: Registry): void;
  /** Resets interrupted scans, queues files without a verdict, then works until stopped. */
  start(): void;
  stop(): Promise<void>;
}

export interface ScanWorkerDeps {
  db: Db;
  storage: Storage;
  clamd: Clamd;
  config: Pick<ClamdConfig, 'maxBackoffMs'>;
  events: EventSink;
  now: () => number;
  log: Logger;
}

export function createScanWorker(deps: ScanWorkerDeps): ScanWorker {
  const { db, now, log } = deps;
  const s = {
    enqueue: db.prepare<[string, number]>('INSERT OR IGNORE INTO scan_jobs (key, run_at) VALUES (?, ?)'),
    due: db.prepare<[number, number], Job>('SELECT key, attempts FROM scan_jobs WHERE run_at <= ? ORDER BY run_at LIMIT ?'),
    nextDue: db.prepare<[], { at: number | null }>('SELECT min(run_at) AS at FROM scan_jobs'),
    retry: db.prepare<[number, string, string]>('UPDATE scan_jobs SET attempts = attempts + 1, run_at = ?, last_error = ? WHERE key = ?'),
    done: db.prepare<[string]>('DELETE FROM scan_jobs WHERE key = ?'),
    getFile: db.prepare<[string], FileRow>('SELECT * FROM files WHERE key = ?'),
    setStatus: db.prepare<[string, string]>('UPDATE files SET scan_status = ? WHERE key = ?'),
    verdict: db.prepare<[string, string | null, number, string]>(
      'UPDATE files SET scan_status = ?, scan_signature = ?, scanned_at = ? WHERE key = ?',
    ),
    resetScanning: db.prepare("UPDATE files SET scan_status = 'pending' WHERE scan_status = 'scanning'"),
    backfillStatus: db.prepare("UPDATE files SET scan_status = 'pending' WHERE state = 'ready' AND scan_status IS NULL"),
    backfillJobs: db.prepare<[number]>(
      "INSERT OR IGNORE INTO scan_jobs (key, run_at) SELECT key, ? FROM files WHERE state = 'ready' AND scan_status = 'pending'",
    ),
    depth: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM scan_jobs'),
  };

  let verdicts: Counter<'verdict'> | undefined;
  let duration: Histogram | undefined;
  let up: Gauge | undefined;

  const running = new Map<string, Promise<void>>();
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(pump, Math.max(0, ms));
    timer.unref();
  }

  function pump(): void {
    if (stopped) return;
    try {
      const free = SCAN_CONCURRENCY - running.size;
      if (free > 0) {
        for (const job of s.due.all(now(), free + running.size)) {
          if (running.size >= SCAN_CONCURRENCY) break;
          if (running.has(job.key)) continue;
          const work = scan(job).finally(() => {
            running.delete(job.key);
            schedule(0);
          });
          running.set(job.key, work);
        }
      }
      const next = s.nextDue.get()!.at;
      schedule(next === null ? POLL_MS : Math.min(POLL_MS, next - now()));
    } catch (error) {
      log.error({ err: error }, 'scan queue failed');
      schedule(POLL_MS);
    }
  }

  async function scan(job: Job): Promise<void> {
    const file = s.getFile.get(job.key);
    if (!file || file.state !== 'ready') {
      s.done.run(job.key); // deleted meanwhile (the cascade usually got there first)
      return;
    }
    s.setStatus.run('scanning', job.key);
    const started = performance.now();
    let verdict: Verdict;
    try {
      verdict = await deps.clamd.scan(await deps.storage.openFile(job.key));
      up?.set(1);
    } catch (error) {
      if (stopped) return; // abandoned: 'scanning' becomes 'pending' at the next start
      const unavailable = error instanceof ClamdUnavailable;
      if (unavailable) up?.set(0);
      const attempts = job.attempts + 1;
      if (!unavailable && attempts >= CUT_ATTEMPTS) {
        // clamd took the connection but cut it mid-stream, again and again: past StreamMaxLength
        // its reply can be lost to the reset of the bytes it did not read. That is a verdict.
        verdict = { status: 'error', message: (error as Error).message };
        return record(job, file, verdict, (performance.now() - started) / 1000);
      }
      const wait = Math.round(Math.min(deps.config.maxBackoffMs, FIRST_BACKOFF_MS * 2 ** Math.min(attempts - 1, 30)) * (0.5 + Math.random() * 0.5));
      db.transaction(() => {
        if (!s.getFile.get(job.key)) return;
        s.setStatus.run('pending', job.key);
        s.retry.run(now() + wait, (error as Error).message, job.key);
      })();
      log.warn({ key: job.key, attempts, retry_in_ms: wait, err: unavailable ? undefined : error, error: (error as Error).message }, 'virus scan did not run; will retry');
      return;
    }
    record(job, file, verdict, (performance.now() - started) / 1000);
  }

  function record(job: Job, file: FileRow, verdict: Verdict, seconds: number): void {
    db.transaction(() => {
      const current = s.getFile.get(job.key);
      s.done.run(job.key);
      if (!current) return; // deleted while it was being scanned
      const signature = verdict.status === 'infected' ? verdict.signature : null;
      s.verdict.run(verdict.status, signature, now(), job.key);
      deps.events.emit('file.scanned', current.upload_id, {
        upload_id: current.upload_id, key: current.key, user_id: current.user_id, scan_status: verdict.status, signature,
      });
    })();
    verdicts?.inc({ verdict: verdict.status });
    duration?.observe(seconds);
    const context = { event: 'file.scanned', key: job.key, user_id: file.user_id, scan_status: verdict.status, seconds };
    if (verdict.status === 'infected') log.warn({ ...context, signature: verdict.signature }, 'virus found; the file is quarantined');
    else if (verdict.status === 'error') log.error({ ...context, error: verdict.message }, 'clamd could not scan the file');
    else log.info(context, 'file scanned');
  }

  return {
    queue: {
      enabled: true,
      enqueue(key) {
        s.enqueue.run(key, now());
        setImmediate(() => schedule(0)); // after the surrounding transaction commits
      },
    },
    attachMetrics(registry) {
      const registers = [registry];
      new Gauge({ name: 'sl_scan_queue_depth', help: 'Files waiting for their virus scan', registers, collect() { this.set(s.depth.get()!.n); } });
      verdicts = new Counter({ name: 'sl_scans_total', help: 'Virus scan verdicts: clean, infected, error', labelNames: ['verdict'], registers });
      duration = new Histogram({ name: 'sl_scan_duration_seconds', help: 'Time to stream one file through clamd', registers, buckets: [0.01, 0.05, 0.25, 1, 5, 30, 120] });
      up = new Gauge({ name: 'sl_clamd_up', help: '1 when the last contact with clamd succeeded, 0 when it could not be reached', registers });
    },
    start() {
      db.transaction(() => {
        s.resetScanning.run();
        s.backfillStatus.run();
        s.backfillJobs.run(now());
      })();
      stopped = false;
      schedule(0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.allSettled([...running.values()]);
    },
  };
}
