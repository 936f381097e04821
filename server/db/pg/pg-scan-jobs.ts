// The virus-scan queue on PostgreSQL (server/db/scan-repo.ts is its SQLite twin and says what a
// "takeable" job is). Several instances run scan workers against it: a job is claimed with
// FOR UPDATE SKIP LOCKED and carries the claim's end (claimed_until), so two workers never scan one
// file at once, and a job whose worker died is taken again once its lease ends, while a worker's
// scan in flight on another instance is left alone.
import type { FileRow } from '../repo.ts';
import type { ScanJobs } from '../contract.ts';
import type { Sql } from './sql.ts';

/** Due (or lease ended) and its file ready; the claim is on the job row itself so a recheck sees it. */
const TAKEABLE = `f.state = 'ready' AND (j.claimed_until IS NULL OR j.claimed_until <= $1)`;

export function createPgScanJobs(sql: Sql): ScanJobs {
  const setStatus = (tx: Sql, key: string) =>
    tx.run("UPDATE files SET scan_status = 'pending' WHERE key = $1 AND scan_status = 'scanning'", [key]);
  return {
    enqueue: (key, now) =>
      sql.tx(async (tx) => {
        await tx.run("UPDATE files SET scan_status = 'pending', scan_signature = NULL, scanned_at = NULL WHERE key = $1", [key]);
        await tx.run(
          'INSERT INTO scan_jobs (key, run_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET run_at = excluded.run_at, claimed_until = NULL',
          [key, now]);
      }),
    take: (now, leaseMs) =>
      sql.tx(async (tx) => {
        // Both rows locked: the file's state and the job's claim are rechecked at their newest
        // versions once the lock is granted, so a job claimed meanwhile is never taken twice.
        const job = await tx.one<{ key: string; attempts: number }>(
          `SELECT j.key, j.attempts FROM scan_jobs j JOIN files f ON f.key = j.key
            WHERE j.run_at <= $1 AND ${TAKEABLE}
            ORDER BY j.run_at, j.key LIMIT 1 FOR UPDATE OF j, f SKIP LOCKED`, [now]);
        if (!job) return undefined;
        await tx.run('UPDATE scan_jobs SET claimed_until = $1 WHERE key = $2', [now + leaseMs, job.key]);
        const file = await tx.one<FileRow>("UPDATE files SET scan_status = 'scanning' WHERE key = $1 RETURNING *", [job.key]);
        return { file: file!, attempts: job.attempts };
      }),
    async renew(keys, until) {
      if (keys.length === 0) return;
      await sql.run('UPDATE scan_jobs SET claimed_until = $1 WHERE key = ANY($2) AND claimed_until IS NOT NULL', [until, keys]);
    },
    async nextRunAt() {
      // A claimed job comes back when its lease ends.
      const row = await sql.one<{ t: number | null }>(
        `SELECT min(greatest(j.run_at, coalesce(j.claimed_until, 0))) AS t FROM scan_jobs j JOIN files f ON f.key = j.key WHERE f.state = 'ready'`);
      return row?.t ?? null;
    },
    release: (key) =>
      sql.tx(async (tx) => {
        await tx.run('UPDATE scan_jobs SET claimed_until = NULL WHERE key = $1', [key]);
        await setStatus(tx, key);
      }),
    postpone: (key, runAt, error) =>
      sql.tx(async (tx) => {
        await tx.run('UPDATE scan_jobs SET attempts = attempts + 1, run_at = $1, last_error = $2, claimed_until = NULL WHERE key = $3',
          [runAt, error.slice(0, 1000), key]);
        await setStatus(tx, key);
      }),
    record: (key, verdict, signature, now) =>
      sql.tx(async (tx) => {
        const file = await tx.one<FileRow>(
          "UPDATE files SET scan_status = $1, scan_signature = $2, scanned_at = $3 WHERE key = $4 AND state = 'ready' RETURNING *",
          [verdict, signature, now, key]);
        await tx.run('DELETE FROM scan_jobs WHERE key = $1', [key]);
        return file;
      }),
    resetInterrupted: (now) =>
      sql.tx(async (tx) => {
        const keys = await tx.rows<{ key: string }>(
          'UPDATE scan_jobs SET claimed_until = NULL WHERE claimed_until <= $1 RETURNING key', [now]);
        return tx.run(
          `UPDATE files SET scan_status = 'pending' WHERE scan_status = 'scanning'
             AND (key = ANY($1) OR NOT EXISTS (SELECT 1 FROM scan_jobs j WHERE j.key = files.key))`,
          [keys.map((k) => k.key)]);
      }),
    backfill: (now) =>
      sql.tx(async (tx) => {
        const queued = await tx.run(
          `INSERT INTO scan_jobs (key, run_at)
             SELECT key, $1 FROM files WHERE state = 'ready' AND (scan_status IS NULL OR scan_status IN ('pending', 'scanning'))
           ON CONFLICT (key) DO NOTHING`, [now]);
        await tx.run("UPDATE files SET scan_status = 'pending' WHERE state = 'ready' AND scan_status IS NULL");
        return queued;
      }),
    retryNow: (now) => sql.run('UPDATE scan_jobs SET run_at = $1 WHERE attempts > 0 AND run_at > $1', [now]),
    depth: async () => (await sql.one<{ n: number }>('SELECT count(*) AS n FROM scan_jobs'))!.n,
    job: (key) => sql.one<{ attempts: number; run_at: number; last_error: string | null }>(
      'SELECT attempts, run_at, last_error FROM scan_jobs WHERE key = $1', [key]),
  };
}
