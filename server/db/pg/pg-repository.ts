// The repository contract (server/db/contract.ts) on PostgreSQL, for several instances sharing one
// database (docs/design-several-instances.md). The schema is server/db/postgres-migrations.ts; the
// meaning of each statement is that of its SQLite twin in server/db/repo.ts.
//
// Quotas: a decision locks the user's row of totals (SELECT … FOR UPDATE) for its transaction, so
// parallel creations and resizes for one user queue on it, on whichever instance they run, and
// never overshoot; different users never wait for each other. The totals themselves are kept by
// triggers, as on SQLite.
import type pg from 'pg';
import type { Repository, Reservation } from '../contract.ts';
import type { DigestCheckpoint, FileRow, UploadRow, Usage } from '../repo.ts';
import { createPgInstances, pgDeletionOwners, pgMarkDeleting, pgTakeOverDeletion } from './pg-instances.ts';
import { createPgLeases, createPgLegacyParts } from './pg-leases.ts';
import { createPgOutbox } from './pg-outbox.ts';
import { createPgScanJobs } from './pg-scan-jobs.ts';
import { createSql, type Sql } from './sql.ts';

export interface PgRepositoryOptions {
  /** The instance's pool, shared with the upload locker; a handful of connections serves it. */
  pool: pg.Pool;
  webhookUrls: readonly string[];
  now: () => number;
  /** Wakes the dispatcher once a transaction that emitted an event has committed. */
  onEmit?: () => void;
}

const READY_PAGE = 500;

const UPLOAD_COLUMNS = ['id', 'user_id', 'length', 'reserved_bytes', 'filename', 'folder', 'content_type',
  'sha256_declared', 'created_at', 'touched_at', 'head', 'type_checked', 'detected_type'] as const;
const FILE_COLUMNS = ['key', 'user_id', 'upload_id', 'folder', 'filename', 'content_type', 'size', 'sha256',
  'created_at', 'state', 'detected_type', 'category', 'scan_status', 'scan_signature', 'scanned_at'] as const;

const insertInto = (table: string, columns: readonly string[]) =>
  `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`;
const INSERT_UPLOAD = insertInto('uploads', UPLOAD_COLUMNS);
const INSERT_FILE = insertInto('files', FILE_COLUMNS);
const uploadValues = (row: UploadRow) => UPLOAD_COLUMNS.map((c) => row[c] ?? null);
const fileValues = (row: FileRow) => FILE_COLUMNS.map((c) => row[c] ?? null);

export function createPgRepository(options: PgRepositoryOptions): Repository {
  return build(createSql(options.pool), options);
}

function build(sql: Sql, options: PgRepositoryOptions): Repository {
  const onEmit = options.onEmit ?? (() => {});

  /** The user's totals, locked for the rest of the transaction (the row is made if missing). */
  async function lockTotals(tx: Sql, userId: string): Promise<Usage & { uploads: number }> {
    await tx.run('INSERT INTO user_usage (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [userId]);
    return (await tx.one<Usage & { uploads: number }>(
      'SELECT used_bytes, reserved_bytes, uploads FROM user_usage WHERE user_id = $1 FOR UPDATE', [userId]))!;
  }
  const getUpload = (id: string) => sql.one<UploadRow>('SELECT * FROM uploads WHERE id = $1', [id]);
  const usage = async (userId: string): Promise<Usage> =>
    (await sql.one<Usage>('SELECT used_bytes, reserved_bytes FROM user_usage WHERE user_id = $1', [userId])) ?? { used_bytes: 0, reserved_bytes: 0 };

  const repository: Repository = {
    atomically: (fn) => sql.tx((tx) => fn(build(tx, options))),
    afterCommit: (fn) => sql.afterCommit(fn),
    ping: async () => (await sql.one<{ ok: number }>('SELECT 1 AS ok'))?.ok === 1,

    usage,
    reserveUpload: (row, quotaBytes, maxUnfinished) =>
      sql.tx(async (tx): Promise<Reservation> => {
        const { used_bytes, reserved_bytes, uploads } = await lockTotals(tx, row.user_id);
        if (uploads >= maxUnfinished) return 'count';
        if (used_bytes + reserved_bytes + row.reserved_bytes > quotaBytes) return 'quota';
        await tx.run(INSERT_UPLOAD, uploadValues(row));
        return 'reserved';
      }),
    setReservation: (id, reservedBytes, length, quotaBytes, now) =>
      sql.tx(async (tx) => {
        const owner = await tx.one<{ user_id: string }>('SELECT user_id FROM uploads WHERE id = $1', [id]);
        if (!owner) return false;
        const { used_bytes, reserved_bytes } = await lockTotals(tx, owner.user_id);
        // Read again under the lock: the reservation may have changed while this waited for it.
        const upload = await tx.one<UploadRow>('SELECT * FROM uploads WHERE id = $1', [id]);
        if (!upload) return false;
        if (reservedBytes > upload.reserved_bytes && used_bytes + reserved_bytes - upload.reserved_bytes + reservedBytes > quotaBytes) return false;
        await tx.run('UPDATE uploads SET reserved_bytes = $1, length = coalesce($2, length), touched_at = $3 WHERE id = $4', [reservedBytes, length, now, id]);
        return true;
      }),
    async roomFor(userId, uploadId, quotaBytes) {
      const { used_bytes, reserved_bytes } = await usage(userId);
      const own = await getUpload(uploadId);
      const others = reserved_bytes - (own?.user_id === userId ? own.reserved_bytes : 0);
      return Math.max(0, quotaBytes - used_bytes - others);
    },
    async usageByUser() {
      const rows = await sql.rows<{ user_id: string; n: number }>(
        'SELECT user_id, coalesce(sum(size), 0) AS n FROM files WHERE damage IS NULL GROUP BY user_id');
      return new Map(rows.map((r) => [r.user_id, r.n]));
    },

    getUpload,
    touchUpload: async (id, now) => void (await sql.run('UPDATE uploads SET touched_at = $1 WHERE id = $2', [now, id])),
    deleteUpload: async (id) => void (await sql.run('DELETE FROM uploads WHERE id = $1', [id])),
    setUploadHead: async (id, head) => void (await sql.run('UPDATE uploads SET head = $1 WHERE id = $2 AND type_checked = 0', [head, id])),
    setUploadType: async (id, detectedType) =>
      void (await sql.run('UPDATE uploads SET type_checked = 1, detected_type = $1, head = NULL WHERE id = $2', [detectedType, id])),
    idleUploads: (touchedBefore, limit) =>
      sql.rows<UploadRow>('SELECT * FROM uploads WHERE touched_at < $1 ORDER BY touched_at LIMIT $2', [touchedBefore, limit]),
    async knownUploadIds() {
      const rows = await sql.rows<{ id: string }>(
        "SELECT id FROM uploads UNION SELECT upload_id FROM files WHERE state = 'committing'");
      return new Set(rows.map((r) => r.id));
    },
    unfinishedUploadIds: async () => (await sql.rows<{ id: string }>('SELECT id FROM uploads')).map((r) => r.id),
    markPartialUpload: async (id) => void (await sql.run('INSERT INTO partial_uploads (upload_id) VALUES ($1) ON CONFLICT DO NOTHING', [id])),
    isPartialUpload: async (id) => (await sql.one('SELECT 1 FROM partial_uploads WHERE upload_id = $1', [id])) !== undefined,
    async saveDigestCheckpoint(uploadId, offset, state) {
      await sql.run(
        `INSERT INTO upload_digests (upload_id, "offset", state) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM uploads WHERE id = $1)
         ON CONFLICT (upload_id, "offset") DO UPDATE SET state = excluded.state`,
        [uploadId, offset, Buffer.from(state.buffer, state.byteOffset, state.byteLength)],
      ).catch((error: { code?: string }) => {
        // The upload went between the check and the insert: nothing is saved, as when it was gone before.
        if (error.code !== '23503') throw error;
      });
    },
    digestCheckpoints: (uploadId, atMost) =>
      sql.rows<DigestCheckpoint>('SELECT "offset", state FROM upload_digests WHERE upload_id = $1 AND "offset" <= $2 ORDER BY "offset" DESC', [uploadId, atMost]),
    pruneDigestCheckpoints: async (uploadId, [a, b]) =>
      void (await sql.run('DELETE FROM upload_digests WHERE upload_id = $1 AND "offset" NOT IN ($2, $3)', [uploadId, a, b])),

    replaceUploadWithFile: (file) =>
      sql.tx(async (tx) => {
        await tx.run('DELETE FROM uploads WHERE id = $1', [file.upload_id]);
        await tx.run(INSERT_FILE, fileValues(file));
      }),
    getFile: (key) => sql.one<FileRow>('SELECT * FROM files WHERE key = $1', [key]),
    getFileByUploadId: (uploadId) => sql.one<FileRow>('SELECT * FROM files WHERE upload_id = $1', [uploadId]),
    setFileState: async (key, state) => void (await sql.run('UPDATE files SET state = $1 WHERE key = $2', [state, key])),
    deleteFile: async (key) => void (await sql.run('DELETE FROM files WHERE key = $1', [key])),
    filesInTransition: () => sql.rows<FileRow>("SELECT * FROM files WHERE state <> 'ready'"),
    listFiles: (q) =>
      sql.rows<FileRow>(
        `SELECT * FROM files
          WHERE user_id = $1 AND state = 'ready' AND damage IS NULL
            AND ($2::text IS NULL OR folder = $2)
            AND ($3::bigint IS NULL OR created_at < $3 OR (created_at = $3 AND key < $4))
          ORDER BY created_at DESC, key DESC
          LIMIT $5`,
        [q.userId, q.folder ?? null, q.after?.createdAt ?? null, q.after?.key ?? '', q.limit],
      ),
    markDamage: async (key, damage, now) =>
      (await sql.run("UPDATE files SET damage = $1, damaged_at = $2 WHERE key = $3 AND state = 'ready' AND damage IS DISTINCT FROM $1", [damage, now, key])) > 0,
    clearDamage: async (key) => (await sql.run('UPDATE files SET damage = NULL, damaged_at = NULL WHERE key = $1 AND damage IS NOT NULL', [key])) > 0,
    countDamagedFiles: async () => (await sql.one<{ n: number }>('SELECT count(*) AS n FROM files WHERE damage IS NOT NULL'))!.n,
    async *readyFiles() {
      // Keyset pages: no cursor (and no connection) is held while the caller works on a page.
      let after = '';
      for (;;) {
        const page = await sql.rows<FileRow>("SELECT * FROM files WHERE state = 'ready' AND key > $1 ORDER BY key LIMIT $2", [after, READY_PAGE]);
        yield* page;
        if (page.length < READY_PAGE) return;
        after = page.at(-1)!.key;
      }
    },
    allFileKeys: async () => new Set((await sql.rows<{ key: string }>('SELECT key FROM files')).map((r) => r.key)),

    scans: createPgScanJobs(sql),
    legacyParts: createPgLegacyParts(sql),
    outbox: createPgOutbox(sql, options.webhookUrls, options.now, onEmit),
    leases: createPgLeases(sql),
    instances: createPgInstances(sql),
    markDeleting: (key, instanceId) => pgMarkDeleting(sql, key, instanceId),
    deletionOwners: () => pgDeletionOwners(sql),
    takeOverDeletion: (key, instanceId, previous) => pgTakeOverDeletion(sql, key, instanceId, previous),
  };
  return repository;
}
