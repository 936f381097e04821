// The statements of the PostgreSQL upload locker, each one round trip on any pooled connection.
// Leases are measured on the database's clock (now()), the one clock every instance shares.
import type { Pool } from 'pg';
import { reachingDatabase } from '../database-unreachable.ts';
import { CHANNEL_PREFIX } from './lock-channel.ts';

const LEASE = `now() + make_interval(secs => $4::float8 / 1000)`;

/** Takes the lock if it is free or its lease ran out; true when `token` holds it now. */
export async function claimLock(pool: Pool, uploadId: string, instanceId: string, token: string, leaseMs: number): Promise<boolean> {
  const { rowCount } = await reachingDatabase(pool.query(
    `INSERT INTO upload_locks AS l (upload_id, instance_id, token, expires_at) VALUES ($1, $2, $3, ${LEASE})
     ON CONFLICT (upload_id) DO UPDATE
       SET instance_id = excluded.instance_id, token = excluded.token, expires_at = excluded.expires_at
       WHERE l.expires_at <= now()`,
    [uploadId, instanceId, token, leaseMs],
  ));
  return rowCount === 1;
}

/**
 * Sends a release request to the instance holding a live lock on the upload (NOTIFY on its
 * channel); false when nobody holds one any more (it was just released, or its lease ran out).
 */
export async function askHolderToRelease(pool: Pool, uploadId: string, fromInstanceId: string): Promise<boolean> {
  const { rowCount } = await reachingDatabase(pool.query(
    `SELECT pg_notify('${CHANNEL_PREFIX}' || instance_id,
              json_build_object('kind', 'release', 'upload', upload_id, 'token', token, 'from', $2::text)::text)
     FROM upload_locks WHERE upload_id = $1 AND expires_at > now()`,
    [uploadId, fromInstanceId],
  ));
  return rowCount === 1;
}

/** Extends the leases of locks still held by their tokens; returns the tokens that were renewed. */
export async function renewLocks(pool: Pool, locks: readonly { uploadId: string; token: string }[], leaseMs: number): Promise<Set<string>> {
  const { rows } = await reachingDatabase(pool.query<{ token: string }>(
    `UPDATE upload_locks AS l SET expires_at = now() + make_interval(secs => $3::float8 / 1000)
     FROM unnest($1::text[], $2::text[]) AS r (upload_id, token)
     WHERE l.upload_id = r.upload_id AND l.token = r.token
     RETURNING l.token`,
    [locks.map((l) => l.uploadId), locks.map((l) => l.token), leaseMs],
  ));
  return new Set(rows.map((r) => r.token));
}

/**
 * Deletes the lock if `token` still holds it, and tells the instances that asked for it that the
 * upload is free (so they retry at once instead of at their next poll).
 */
export async function releaseLock(pool: Pool, uploadId: string, token: string, notifyInstanceIds: readonly string[]): Promise<void> {
  await reachingDatabase(pool.query(
    `WITH gone AS (DELETE FROM upload_locks WHERE upload_id = $1 AND token = $2 RETURNING upload_id)
     SELECT pg_notify('${CHANNEL_PREFIX}' || w.instance_id, json_build_object('kind', 'freed', 'upload', gone.upload_id)::text)
     FROM gone CROSS JOIN unnest($3::text[]) AS w (instance_id)`,
    [uploadId, token, notifyInstanceIds],
  ));
}

/** Drops rows whose lease ended long ago (instances that died holding them); harmless but dead weight. */
export async function sweepExpiredLocks(pool: Pool, olderThanMs: number): Promise<number> {
  const { rowCount } = await reachingDatabase(pool.query(
    `DELETE FROM upload_locks WHERE expires_at < now() - make_interval(secs => $1::float8 / 1000)`,
    [olderThanMs],
  ));
  return rowCount ?? 0;
}
