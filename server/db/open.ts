// Opens the SQLite database (WAL) and brings its schema up to date, one migration per user_version.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

/**
 * Each entry moves the schema from version i to i+1. Never edit a released migration: add one.
 * Times are integer milliseconds since the epoch (UTC).
 */
const MIGRATIONS: string[] = [
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
  -- so that start-up can finish what a crash interrupted (see hooks/finalize.ts). Only 'ready'
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
