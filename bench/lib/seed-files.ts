// Gives a user many finished files without uploading them: rows inserted straight into a stopped
// server's SQLite database, in one transaction, through the schema the database has at that
// moment (read with PRAGMA table_info, so the helper follows migrations instead of a copy of them).
// Rows are what a real upload leaves: state 'ready', a valid key, photo-like sizes, a scan verdict
// where the schema has one. The per-user counters (user_usage) follow by the schema's own triggers,
// as they do for an upload, so the database stays consistent for a quota check.
// Only the rows exist: no bytes are written to storage (the cost measured is the database's).
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

export const DB_FILE = 'stream-line.sqlite';

const DAY_MS = 86_400_000;

export type Seeded = { files: number; bytes: number; ms: number };

type Column = { name: string; notnull: number; dflt_value: unknown; pk: number };

/** Inserts `count` ready files of `userId` into the database at `dbPath` (the server must be stopped). */
export function seedFiles(dbPath: string, userId: string, count: number, now = Date.now()): Seeded {
  const t0 = performance.now();
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const columns = columnsOf(db, 'files');
    if (columns.length === 0) throw new Error(`${dbPath} has no files table: start the server on it once first`);
    const names = columns.map((c) => c.name).filter((n) => n in fileRow(userId, 0, now));
    const missing = columns.filter((c) => !names.includes(c.name) && c.notnull && c.dflt_value === null && !c.pk);
    if (missing.length) throw new Error(`files.${missing.map((c) => c.name).join(', files.')}: NOT NULL without a default; teach seed-files.ts what a real upload puts there`);
    const insert = db.prepare(`INSERT INTO files (${names.join(', ')}) VALUES (${names.map((n) => `@${n}`).join(', ')})`);
    let bytes = 0;
    db.transaction(() => {
      // Numbered after every row already there, so a second seeding adds files instead of colliding.
      const first = (db.prepare('SELECT coalesce(max(rowid), 0) AS n FROM files').get() as { n: number }).n;
      for (let i = first; i < first + count; i++) {
        const row = fileRow(userId, i, now);
        bytes += row.size;
        insert.run(pick(row, names));
      }
    })();
    return { files: count, bytes, ms: performance.now() - t0 };
  } finally {
    db.close();
  }
}

function columnsOf(db: Database.Database, table: string): Column[] {
  return db.prepare(`SELECT name, "notnull", dflt_value, pk FROM pragma_table_info(?)`).all(table) as Column[];
}

/** Every column a finished upload fills today (server/db/repo.ts FileRow); unknown ones are left to their defaults. */
function fileRow(userId: string, i: number, now: number): Record<string, string | number | null> & { size: number } {
  const uploadId = `5eed${i.toString(16).padStart(28, '0')}`;
  const createdAt = now - DAY_MS - ((i * 7919) % (365 * DAY_MS)); // spread over the past year
  const day = new Date(createdAt).toISOString().slice(0, 10).replaceAll('-', '/');
  return {
    key: `users/${userId}/${day}/${uploadId}.jpg`,
    user_id: userId,
    upload_id: uploadId,
    folder: i % 4 === 0 ? 'camera' : '',
    filename: `IMG_${String(i).padStart(6, '0')}.jpg`,
    content_type: 'image/jpeg',
    size: photoSize(i),
    sha256: createHash('sha256').update(uploadId).digest('hex'),
    created_at: createdAt,
    state: 'ready',
    detected_type: 'image/jpeg',
    category: 'image',
    scan_status: 'clean',
    scan_signature: null,
    scanned_at: createdAt,
  };
}

/** A phone photo: 0.5 to ~8 MiB, spread log-uniformly, the same for the same index. */
function photoSize(i: number): number {
  const u = ((i * 2654435761) % 2 ** 32) / 2 ** 32;
  return Math.round(512 * 1024 * 2 ** (4 * u));
}

function pick(row: Record<string, unknown>, names: string[]): Record<string, unknown> {
  return Object.fromEntries(names.map((n) => [n, row[n]]));
}
