// Opens the SQLite database (WAL) and brings its schema up to date, one migration per user_version.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

/**
 * Each entry moves the schema from version i to i+1. Never edit a released migration: add one.
 * Times are integer milliseconds since the epoch (UTC).
 */
export const MIGRATIONS: readonly string[] = [
  `
  -- An unfinished tus upload and the quota it holds. The row exists from creation until the
  -- upload is finalized, terminated or expired; reserved_bytes is what it counts against quota.
  CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    length          INTEGER,            -- NULL while the length is deferred
    reserved_bytes  INTEGER NOT NULL CHECK (reserved_bytes >= 0),
    filename        TEXT NOT NULL,
    folder          TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    sha256_declared TEXT,
    created_at      INTEGER NOT NULL,
    touched_at      INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX uploads_by_user ON uploads (user_id);
  CREATE INDEX uploads_by_touched ON uploads (touched_at);

  -- A finished file. state 'committing' and 'deleting' are intents written before bytes move or go,
  -- so that start-up can finish what a crash interrupted (see hooks/repair.ts). Only 'ready'
  -- rows are visible through the API; every state counts against quota.
  CREATE TABLE files (
    key          TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    upload_id    TEXT NOT NULL UNIQUE,
    folder       TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('committing', 'ready', 'deleting'))
  ) STRICT;
  CREATE INDEX files_by_user ON files (user_id, created_at DESC, key DESC);
  CREATE INDEX files_by_user_folder ON files (user_id, folder, created_at DESC, key DESC);
  CREATE INDEX files_in_transition ON files (state) WHERE state <> 'ready';
  `,
  `
  -- Saved SHA-256 states (hash-wasm's save()) of unfinished uploads on storage that cannot read an
  -- upload's bytes back (S3: parts of an open multipart upload), at the offsets where that storage
  -- holds bytes durably. Several per upload: after a crash the durable offset may be any part end
  -- reached since the last PATCH finished. See hooks/sha256.ts.
  CREATE TABLE upload_digests (
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    offset    INTEGER NOT NULL CHECK (offset > 0),
    state     BLOB NOT NULL,
    PRIMARY KEY (upload_id, offset)
  ) STRICT, WITHOUT ROWID;
  `,
  `
  -- Content checks (hooks/content-type.ts). An upload keeps its first bytes in head until there
  -- are enough to detect its real type (or the upload ends); then type_checked is 1, head is
  -- cleared and detected_type holds the type (NULL when no signature matched: plain text, CSV).
  -- A file carries the detected type beside the declared content_type, and its category.
  ALTER TABLE uploads ADD COLUMN head BLOB;
  ALTER TABLE uploads ADD COLUMN type_checked INTEGER NOT NULL DEFAULT 0 CHECK (type_checked IN (0, 1));
  ALTER TABLE uploads ADD COLUMN detected_type TEXT;
  ALTER TABLE files ADD COLUMN detected_type TEXT;
  ALTER TABLE files ADD COLUMN category TEXT
    CHECK (category IN ('image', 'video', 'audio', 'document', 'archive', 'other'));
  `,
  `
  -- Virus scanning (server/scan/worker.ts). scan_status is NULL for files recorded while scanning was off.
  -- scan_jobs is the durable queue: one row per file waiting for clamd, with its backoff; it goes
  -- with its file.
  ALTER TABLE files ADD COLUMN scan_status TEXT
    CHECK (scan_status IN ('pending', 'scanning', 'clean', 'infected', 'error'));
  ALTER TABLE files ADD COLUMN scan_signature TEXT;
  ALTER TABLE files ADD COLUMN scanned_at INTEGER;
  CREATE TABLE scan_jobs (
    key        TEXT PRIMARY KEY REFERENCES files (key) ON DELETE CASCADE,
    attempts   INTEGER NOT NULL DEFAULT 0,
    run_at     INTEGER NOT NULL,
    last_error TEXT
  ) STRICT;
  CREATE INDEX scan_jobs_due ON scan_jobs (run_at);
  `,
  `
  -- Webhooks (server/webhooks/): the durable outbox. An event is written in the same transaction
  -- as the change it reports, with one delivery row per configured URL. subject is the upload
  -- id (constant from upload.created to file.deleted): deliveries to one URL with one subject go out
  -- in event order, one at a time.
  CREATE TABLE webhook_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE webhook_deliveries (
    event           INTEGER NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    subject         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    PRIMARY KEY (event, url)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (url, subject, event) WHERE state = 'pending';
  `,
  `
  -- Virus scanning: connections clamd accepted and then cut mid-stream, counted apart from the
  -- attempts made while clamd was unreachable (only cuts turn into an 'error' verdict).
  ALTER TABLE scan_jobs ADD COLUMN cuts INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- Webhooks: the outbox is read by age (pruning, server/webhooks/dispatcher.ts) and counted by
  -- state at every metrics scrape; without these both would scan every event and delivery kept
  -- for 7 to 30 days, on the event loop (figures in bench/README.md).
  CREATE INDEX webhook_events_by_age ON webhook_events (created_at);
  CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (event) WHERE state = 'dead';
  `,
  `
  -- Webhooks: the dispatcher finds a URL's due deliveries by time; the ones waiting behind a head
  -- that backs off carry its next attempt time, so they are not due (server/db/outbox.ts).
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (url, next_attempt_at) WHERE state = 'pending';
  `,
  `
  -- The original Stream-Line API (server/routes/legacy-uploads.ts) sends an upload's bytes as
  -- numbered parts. The part being written is remembered with where it starts, so that a part sent
  -- again (a retry after a lost answer) is completed or acknowledged instead of stored twice.
  CREATE TABLE legacy_parts (
    upload_id   TEXT PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL CHECK (part_number >= 0),
    start       INTEGER NOT NULL CHECK (start >= 0),
    length      INTEGER NOT NULL CHECK (length >= 0)
  ) STRICT;
  `,
  `
  -- tus concatenation: uploads created with Upload-Concat: partial. They hold quota like any upload
  -- but never become files; a final upload concatenates them and removes them (hooks/concat.ts).
  CREATE TABLE partial_uploads (
    upload_id TEXT PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE
  ) STRICT;
  `,
  `
  -- Stored bytes that no longer match a ready record (server/storage/damage.ts): 'missing' when
  -- storage holds nothing at the key, 'size_mismatch' when it holds another number of bytes. A marked
  -- file is left out of listings and usage and answers file_missing / file_damaged; the mark goes
  -- when the bytes match again (scripts: npm run check-storage). See docs/storage-check.md.
  ALTER TABLE files ADD COLUMN damage TEXT CHECK (damage IN ('missing', 'size_mismatch'));
  ALTER TABLE files ADD COLUMN damaged_at INTEGER;
  CREATE INDEX files_damaged ON files (user_id) WHERE damage IS NOT NULL;
  `,
  `
  -- Each user's totals against the quota: bytes of their files (every state), reservations and
  -- number of their unfinished uploads. Triggers keep them in the very transaction that inserts,
  -- resizes or deletes an upload or a file, so a quota decision reads one row instead of summing
  -- over every file the user has: the cost of an upload does not grow with the user's files.
  -- A file whose stored bytes are marked missing or damaged is not charged (docs/storage-check.md).
  CREATE TABLE user_usage (
    user_id        TEXT PRIMARY KEY,
    used_bytes     INTEGER NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    reserved_bytes INTEGER NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0),
    uploads        INTEGER NOT NULL DEFAULT 0 CHECK (uploads >= 0)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO user_usage (user_id, used_bytes, reserved_bytes, uploads)
    SELECT user_id, sum(used), sum(reserved), sum(upload) FROM (
      SELECT user_id, size AS used, 0 AS reserved, 0 AS upload FROM files WHERE damage IS NULL
      UNION ALL SELECT user_id, 0, reserved_bytes, 1 FROM uploads
    ) GROUP BY user_id;
  CREATE TRIGGER uploads_count_insert AFTER INSERT ON uploads BEGIN
    INSERT INTO user_usage (user_id, reserved_bytes, uploads) VALUES (NEW.user_id, NEW.reserved_bytes, 1)
      ON CONFLICT (user_id) DO UPDATE SET reserved_bytes = reserved_bytes + excluded.reserved_bytes, uploads = uploads + 1;
  END;
  CREATE TRIGGER uploads_count_update AFTER UPDATE OF user_id, reserved_bytes ON uploads BEGIN
    UPDATE user_usage SET reserved_bytes = reserved_bytes - OLD.reserved_bytes, uploads = uploads - 1 WHERE user_id = OLD.user_id;
    INSERT INTO user_usage (user_id, reserved_bytes, uploads) VALUES (NEW.user_id, NEW.reserved_bytes, 1)
      ON CONFLICT (user_id) DO UPDATE SET reserved_bytes = reserved_bytes + excluded.reserved_bytes, uploads = uploads + 1;
  END;
  CREATE TRIGGER uploads_count_delete AFTER DELETE ON uploads BEGIN
    UPDATE user_usage SET reserved_bytes = reserved_bytes - OLD.reserved_bytes, uploads = uploads - 1 WHERE user_id = OLD.user_id;
  END;
  CREATE TRIGGER files_count_insert AFTER INSERT ON files BEGIN
    INSERT INTO user_usage (user_id, used_bytes) VALUES (NEW.user_id, iif(NEW.damage IS NULL, NEW.size, 0))
      ON CONFLICT (user_id) DO UPDATE SET used_bytes = used_bytes + excluded.used_bytes;
  END;
  CREATE TRIGGER files_count_update AFTER UPDATE OF user_id, size, damage ON files BEGIN
    UPDATE user_usage SET used_bytes = used_bytes - iif(OLD.damage IS NULL, OLD.size, 0) WHERE user_id = OLD.user_id;
    INSERT INTO user_usage (user_id, used_bytes) VALUES (NEW.user_id, iif(NEW.damage IS NULL, NEW.size, 0))
      ON CONFLICT (user_id) DO UPDATE SET used_bytes = used_bytes + excluded.used_bytes;
  END;
  CREATE TRIGGER files_count_delete AFTER DELETE ON files BEGIN
    UPDATE user_usage SET used_bytes = used_bytes - iif(OLD.damage IS NULL, OLD.size, 0) WHERE user_id = OLD.user_id;
  END;
  `,
  `
  -- What @tus/file-store knows of an unfinished upload on local disk (its "configstore": length,
  -- metadata and creation date, as tus's JSON), one row per data file under DATA_DIR/uploads; the
  -- data file's size is the offset. Kept here, it costs one statement per change instead of a file
  -- <id>.json beside the data (an open, a write and a close per creation; an lstat and an unlink per
  -- finish). It is storage's bookkeeping, not quota's, so it has no foreign key to uploads: the row
  -- goes with the data file (server/storage/local.ts promote and removeUpload).
  CREATE TABLE IF NOT EXISTS tus_uploads (
    id   TEXT PRIMARY KEY,
    info TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
];

export function openDb(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'stream-line.sqlite'));
  db.pragma('journal_mode = WAL');
  // NORMAL is durable across process crashes in WAL mode; only a power loss can lose the last commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this server (${MIGRATIONS.length})`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
