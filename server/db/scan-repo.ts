// SQL of the virus-scan queue (server/scan/worker.ts), beside repo.ts: scan_jobs holds one row per file
// waiting for clamd, with its backoff; files.scan_status is what clients see. A job goes with its
// file (ON DELETE CASCADE), so deleting a file never leaves one behind.
//
// A job is "takeable" when it is due, its file is 'ready' (not being committed or deleted) and no
// scan of it is running (scan_status 'scanning'). take() and nextRunAt() use that same predicate,
// so the worker never wakes for a job it cannot take.
import type { FileRow, Repo, ScanStatus } from './repo.ts';
import type { Db } from './open.ts';

export type VerdictStatus = Extract<ScanStatus, 'clean' | 'infected' | 'error'>;

export interface TakenJob {
  file: FileRow;
  /** Failed attempts so far (clamd away, storage unreadable): the exponent of the next backoff. */
  attempts: number;
}

const TAKEABLE = `f.state = 'ready' AND f.scan_status IS NOT 'scanning'`;

export class ScanRepo {
  /** The files' own reads and the transaction helper, shared on the same connection. */
  readonly #files: Pick<Repo, 'getFile' | 'atomically'>;
  readonly #s;

  constructor(db: Db, files: Pick<Repo, 'getFile' | 'atomically'>) {
    this.#files = files;
    this.#s = {
      markPending: db.prepare<[string]>(
        "UPDATE files SET scan_status = 'pending', scan_signature = NULL, scanned_at = NULL WHERE key = ?",
      ),
      insertJob: db.prepare<[string, number]>(
        'INSERT INTO scan_jobs (key, run_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET run_at = excluded.run_at',
      ),
      due: db.prepare<[number], { key: string; attempts: number }>(
        `SELECT j.key, j.attempts FROM scan_jobs j JOIN files f ON f.key = j.key
          WHERE j.run_at <= ? AND ${TAKEABLE} ORDER BY j.run_at, j.key LIMIT 1`,
      ),
      nextRunAt: db.prepare<[], { t: number | null }>(
        `SELECT min(j.run_at) AS t FROM scan_jobs j JOIN files f ON f.key = j.key WHERE ${TAKEABLE}`,
      ),
      markScanning: db.prepare<[string]>("UPDATE files SET scan_status = 'scanning' WHERE key = ?"),
      setStatus: db.prepare<[ScanStatus, string, ScanStatus]>('UPDATE files SET scan_status = ? WHERE key = ? AND scan_status = ?'),
      postpone: db.prepare<[number, string, string]>(
        'UPDATE scan_jobs SET attempts = attempts + 1, run_at = ?, last_error = ? WHERE key = ?',
      ),
      record: db.prepare<[VerdictStatus, string | null, number, string]>(
        "UPDATE files SET scan_status = ?, scan_signature = ?, scanned_at = ? WHERE key = ? AND state = 'ready'",
      ),
      deleteJob: db.prepare<[string]>('DELETE FROM scan_jobs WHERE key = ?'),
      resetScanning: db.prepare("UPDATE files SET scan_status = 'pending' WHERE scan_status = 'scanning'"),
      backfillJobs: db.prepare<[number]>(
        `INSERT INTO scan_jobs (key, run_at)
           SELECT key, ? FROM files
            WHERE state = 'ready' AND (scan_status IS NULL OR scan_status IN ('pending', 'scanning'))
              AND key NOT IN (SELECT key FROM scan_jobs)`,
      ),
      backfillStatus: db.prepare("UPDATE files SET scan_status = 'pending' WHERE state = 'ready' AND scan_status IS NULL"),
      retryNow: db.prepare<[number, number]>('UPDATE scan_jobs SET run_at = ? WHERE attempts > 0 AND run_at > ?'),
      depth: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM scan_jobs'),
      job: db.prepare<[string], { attempts: number; run_at: number; last_error: string | null }>(
        'SELECT attempts, run_at, last_error FROM scan_jobs WHERE key = ?',
      ),
    };
  }

  /** The file waits for a scan: 'pending', with a job due at `now`. Call inside the transaction that makes it ready. */
  enqueue(key: string, now: number): void {
    this.#s.markPending.run(key);
    this.#s.insertJob.run(key, now);
  }

  /** The next due job, its file marked 'scanning'; undefined when none is due. */
  take(now: number): TakenJob | undefined {
    return this.#files.atomically(() => {
      const job = this.#s.due.get(now);
      if (!job) return undefined;
      this.#s.markScanning.run(job.key);
      const file = this.#files.getFile(job.key)!;
      return { file, attempts: job.attempts };
    });
  }

  /** When the earliest takeable job is due; null when there is none. */
  nextRunAt(): number | null {
    return this.#s.nextRunAt.get()?.t ?? null;
  }

  /** A scan abandoned (shutdown): the file waits again, the job is unchanged. */
  release(key: string): void {
    this.#s.setStatus.run('pending', key, 'scanning');
  }

  /** A failed attempt: retried at `runAt`; the file waits again. */
  postpone(key: string, runAt: number, error: string): void {
    this.#files.atomically(() => {
      this.#s.postpone.run(runAt, error.slice(0, 1000), key);
      this.#s.setStatus.run('pending', key, 'scanning');
    });
  }

  /**
   * Records a verdict and drops the job. Returns the updated file, or undefined when it is no
   * longer 'ready' (deleted, or being deleted, while it was scanned): nothing is recorded then.
   */
  record(key: string, verdict: VerdictStatus, signature: string | null, now: number): FileRow | undefined {
    return this.#files.atomically(() => {
      const changed = this.#s.record.run(verdict, signature, now, key).changes > 0;
      this.#s.deleteJob.run(key);
      return changed ? this.#files.getFile(key) : undefined;
    });
  }

  /** Start-up: scans a crash interrupted wait again. Returns how many. */
  resetInterrupted(): number {
    return this.#s.resetScanning.run().changes;
  }

  /**
   * Start-up: every ready file without a verdict gets a job — files recorded while scanning was off
   * (scan_status NULL) and any waiting file whose job is missing. Returns how many were queued.
   */
  backfill(now: number): number {
    return this.#files.atomically(() => {
      const queued = this.#s.backfillJobs.run(now).changes;
      this.#s.backfillStatus.run();
      return queued;
    });
  }

  /** Jobs waiting out a backoff become due now (clamd is back). Returns how many. */
  retryNow(now: number): number {
    return this.#s.retryNow.run(now, now).changes;
  }

  /** Files waiting for a verdict (queued or being scanned). */
  depth(): number {
    return this.#s.depth.get()!.n;
  }

  job(key: string): { attempts: number; run_at: number; last_error: string | null } | undefined {
    return this.#s.job.get(key);
  }
}
