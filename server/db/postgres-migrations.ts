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
