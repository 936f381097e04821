// Brings a PostgreSQL database's schema up to date (DATABASE_URL=postgres://…). Several instances
// may start at once against one database: the migrations run inside one transaction that first takes
// a transaction-level advisory lock, so a second instance waits, then finds nothing left to do.
import type { Pool } from 'pg';

/**
 * Each entry moves the schema from version i to i+1. Never edit a released migration: add one.
 * Migrations stay additive (new tables, new nullable columns) so that an instance of the previous
 * release keeps working against the newer schema while a rolling deploy replaces it.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  -- The tus upload locks shared by every instance (server/locker/pg-locker.ts). A row is a lease:
  -- it belongs to whoever holds token until expires_at (the database's clock, never an
  -- instance's), and an expired row is free for the next claimant. instance_id names the holder's
  -- LISTEN channel, where release requests for the upload are sent.
  CREATE TABLE upload_locks (
    upload_id   text PRIMARY KEY,
    instance_id text NOT NULL,
    token       text NOT NULL,
    expires_at  timestamptz NOT NULL
  );
  `,
  `
  -- The records, as server/db/open.ts keeps them on SQLite (read that file for what each table and
  -- column means): the same tables, columns, checks and usage triggers, so that both databases give
  -- the same answers (test/server/db/repository-contract.test.ts). Times are milliseconds since the epoch
  -- and sizes are bytes, both bigint (read back as numbers: they stay below 2^53).
  CREATE TABLE uploads (
    id              text PRIMARY KEY,
    user_id         text NOT NULL,
    length          bigint,
    reserved_bytes  bigint NOT NULL CHECK (reserved_bytes >= 0),
    filename        text NOT NULL,
    folder          text NOT NULL,
    content_type    text NOT NULL,
    sha256_declared text,
    created_at      bigint NOT NULL,
    touched_at      bigint NOT NULL,
    head            bytea,
    type_checked    smallint NOT NULL DEFAULT 0 CHECK (type_checked IN (0, 1)),
    detected_type   text
  );
  CREATE INDEX uploads_by_user ON uploads (user_id);
  CREATE INDEX uploads_by_touched ON uploads (touched_at);

  -- Keys compare byte by byte (listing pages, the storage check's walk), as in SQLite, whatever
  -- the database's locale.
  CREATE TABLE files (
    key            text COLLATE "C" PRIMARY KEY,
    user_id        text NOT NULL,
    upload_id      text NOT NULL UNIQUE,
    folder         text NOT NULL,
    filename       text NOT NULL,
    content_type   text NOT NULL,
    size           bigint NOT NULL CHECK (size >= 0),
    sha256         text NOT NULL,
    created_at     bigint NOT NULL,
    state          text NOT NULL CHECK (state IN ('committing', 'ready', 'deleting')),
    detected_type  text,
    category       text CHECK (category IN ('image', 'video', 'audio', 'document', 'archive', 'other')),
    scan_status    text CHECK (scan_status IN ('pending', 'scanning', 'clean', 'infected', 'error')),
    scan_signature text,
    scanned_at     bigint,
    damage         text CHECK (damage IN ('missing', 'size_mismatch')),
    damaged_at     bigint
  );
  CREATE INDEX files_by_user ON files (user_id, created_at DESC, key DESC);
  CREATE INDEX files_by_user_folder ON files (user_id, folder, created_at DESC, key DESC);
  CREATE INDEX files_in_transition ON files (state) WHERE state <> 'ready';
  CREATE INDEX files_damaged ON files (user_id) WHERE damage IS NOT NULL;

  CREATE TABLE upload_digests (
    upload_id text NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    "offset"  bigint NOT NULL CHECK ("offset" > 0),
    state     bytea NOT NULL,
    PRIMARY KEY (upload_id, "offset")
  );

  -- claimed_until: the scan of a 'scanning' file belongs to the instance that took it until then
  -- (milliseconds, the instances' clocks); past it, any instance may take the job again.
  CREATE TABLE scan_jobs (
    key           text PRIMARY KEY REFERENCES files (key) ON DELETE CASCADE,
    attempts      integer NOT NULL DEFAULT 0,
    run_at        bigint NOT NULL,
    last_error    text,
    cuts          integer NOT NULL DEFAULT 0,
    claimed_until bigint
  );
  CREATE INDEX scan_jobs_due ON scan_jobs (run_at);

  CREATE TABLE webhook_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    type       text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE INDEX webhook_events_by_age ON webhook_events (created_at);
  -- claimed_until: an instance sending this delivery holds it until then; no other sends it meanwhile.
  CREATE TABLE webhook_deliveries (
    event           bigint NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    url             text NOT NULL,
    subject         text NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_error      text,
    claimed_until   bigint,
    PRIMARY KEY (event, url)
  );
  CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (url, subject, event) WHERE state = 'pending';
  CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (event) WHERE state = 'dead';
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (url, next_attempt_at) WHERE state = 'pending';

  CREATE TABLE legacy_parts (
    upload_id   text PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    part_number integer NOT NULL CHECK (part_number >= 0),
    start       bigint NOT NULL CHECK (start >= 0),
    length      bigint NOT NULL CHECK (length >= 0)
  );

  CREATE TABLE partial_uploads (
    upload_id text PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE
  );

  -- Periodic work that one instance at a time runs (the expiry sweep): a lease per job name.
  CREATE TABLE job_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at bigint NOT NULL
  );

  -- Each user's totals against the quota, kept by triggers as on SQLite. A quota decision locks
  -- this row (SELECT … FOR UPDATE): requests for one user queue on it whichever instance runs them.
  CREATE TABLE user_usage (
    user_id        text PRIMARY KEY,
    used_bytes     bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    reserved_bytes bigint NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0),
    uploads        bigint NOT NULL DEFAULT 0 CHECK (uploads >= 0)
  );
  -- What a row brings is added (the user's row made if missing); what it takes away is subtracted
  -- from the row it was added to. (An INSERT … ON CONFLICT cannot subtract: the CHECK refuses the
  -- negative row it proposes before the conflict is found.)
  CREATE FUNCTION usage_add(who text, used bigint, reserved bigint, n bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO user_usage (user_id, used_bytes, reserved_bytes, uploads) VALUES (who, used, reserved, n)
      ON CONFLICT (user_id) DO UPDATE SET used_bytes = user_usage.used_bytes + excluded.used_bytes,
        reserved_bytes = user_usage.reserved_bytes + excluded.reserved_bytes, uploads = user_usage.uploads + excluded.uploads
  $$;
  CREATE FUNCTION usage_sub(who text, used bigint, reserved bigint, n bigint) RETURNS void LANGUAGE sql AS $$
    UPDATE user_usage SET used_bytes = used_bytes - used, reserved_bytes = reserved_bytes - reserved, uploads = uploads - n
      WHERE user_id = who
  $$;
  CREATE FUNCTION uploads_count() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM usage_sub(OLD.user_id, 0, OLD.reserved_bytes, 1); END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN PERFORM usage_add(NEW.user_id, 0, NEW.reserved_bytes, 1); END IF;
    RETURN NULL;
  END $$;
  CREATE FUNCTION files_count() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
      PERFORM usage_sub(OLD.user_id, CASE WHEN OLD.damage IS NULL THEN OLD.size ELSE 0 END, 0, 0);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
      PERFORM usage_add(NEW.user_id, CASE WHEN NEW.damage IS NULL THEN NEW.size ELSE 0 END, 0, 0);
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER uploads_count AFTER INSERT OR DELETE OR UPDATE OF user_id, reserved_bytes ON uploads
    FOR EACH ROW EXECUTE FUNCTION uploads_count();
  CREATE TRIGGER files_count AFTER INSERT OR DELETE OR UPDATE OF user_id, size, damage ON files
    FOR EACH ROW EXECUTE FUNCTION files_count();
  `,
  `
  -- The twin of SQLite's tus_uploads (server/db/open.ts): what @tus/file-store knows of an
  -- unfinished upload on local disk. Several instances use S3, whose store keeps its own .info.
  CREATE TABLE IF NOT EXISTS tus_uploads (
    id   text PRIMARY KEY,
    info text NOT NULL
  );
  `,
  `
  -- The instances running on this database: each beats every few seconds (instance clocks, as
  -- job_leases), and one not seen for a while is taken as gone (server/instance-heartbeat.ts).
  CREATE TABLE instances (
    id         text PRIMARY KEY,
    started_at bigint NOT NULL,
    seen_at    bigint NOT NULL
  );
  -- Which instance is deleting a file (state 'deleting'): another instance's start-up repair
  -- leaves the deletion to it while it is alive (hooks/repair.ts).
  CREATE TABLE file_deletions (
    key         text COLLATE "C" PRIMARY KEY REFERENCES files (key) ON DELETE CASCADE,
    instance_id text NOT NULL
  );
  -- Secrets the server generated (not configured in the environment), one JSON document, so that
  -- every instance uses the same ones (server/auth/secrets.ts). Never logged.
  CREATE TABLE generated_secrets (
    name  text PRIMARY KEY,
    value text NOT NULL
  );
  `,
];

/**
 * The key of the advisory lock that serializes migrations. Any constant works as long as nothing
 * else in the database uses it; this one spells "SLUMIG" in ASCII.
 */
const MIGRATION_LOCK_KEY = 0x534c554d4947;

/** Applies the missing migrations and returns the schema version the database is at afterwards. */
export async function migratePostgres(pool: Pool): Promise<number> {
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query('BEGIN');
    // Held until COMMIT/ROLLBACK. Without it two instances would both see version 0 and both run
    // CREATE TABLE; even IF NOT EXISTS can fail then (a duplicate key in pg_type).
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    for (let version = current + 1; version <= POSTGRES_MIGRATIONS.length; version++) {
      await client.query(POSTGRES_MIGRATIONS[version - 1]!);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
    }
    await client.query('COMMIT');
    // A newer release may already have migrated further: its schema stays (see above).
    return Math.max(current, POSTGRES_MIGRATIONS.length);
  } catch (error) {
    failed = true;
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    // A connection that failed mid-transaction is closed rather than handed to the next query.
    client.release(failed);
  }
}
