// The PostgreSQL schema (server/db/postgres-migrations.ts): two instances starting at once against
// a fresh database both come up on one complete schema, and that schema has every table and column
// SQLite's has (server/db/open.ts), so no record the server keeps is lost on PostgreSQL.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { openDb } from '../../../server/db/open.ts';
import { createPgPool } from '../../../server/db/pg/pool.ts';
import { migratePostgres, POSTGRES_MIGRATIONS } from '../../../server/db/postgres-migrations.ts';
import { tempDir } from '../../helpers/server.ts';
import { createDatabase, POSTGRES_MISSING, startPostgres, type PostgresServer } from '../../support/postgres.ts';

/** Columns only PostgreSQL needs: the claims of work shared between instances. */
const POSTGRES_ONLY = new Set(['scan_jobs.claimed_until', 'webhook_deliveries.claimed_until']);

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('PostgreSQL schema', { skip: POSTGRES_MISSING, timeout: 180_000 }, () => {
  let server: PostgresServer;
  before(async () => (server = await startPostgres()));
  after(async () => server?.stop());

  test('two instances migrating a fresh database at once both end on the newest schema, each migration applied once', async () => {
    const url = await createDatabase(server.url, 'two_starts');
    const pools = [1, 2].map(() => createPgPool(url, log, { max: 2 }));
    try {
      assert.deepEqual(await Promise.all(pools.map((pool) => migratePostgres(pool))), [POSTGRES_MIGRATIONS.length, POSTGRES_MIGRATIONS.length]);
      const { rows } = await pools[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(rows.map((r) => r.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      const tables = await pools[1]!.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
      for (const table of ['files', 'uploads', 'user_usage', 'scan_jobs', 'webhook_events', 'webhook_deliveries', 'upload_locks', 'job_leases']) {
        assert.ok(tables.rows.some((r) => r.table_name === table), `${table} exists`);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  test('every SQLite table and column has its PostgreSQL twin', async () => {
    const dir = tempDir('sl-schema-');
    const sqlite = openDb(dir);
    const url = await createDatabase(server.url, 'twin');
    const pool = createPgPool(url, log, { max: 1 });
    try {
      await migratePostgres(pool);
      const sqliteColumns = sqlite
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .all()
        .flatMap(({ name }) => sqlite.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${name}')`).all().map((c) => `${name}.${c.name}`))
        .sort();
      const { rows } = await pool.query<{ column: string }>(
        "SELECT table_name || '.' || column_name AS column FROM information_schema.columns WHERE table_schema = 'public'");
      const postgresColumns = new Set(rows.map((r) => r.column));
      assert.ok(sqliteColumns.length > 50, 'SQLite schema read');
      assert.deepEqual(sqliteColumns.filter((c) => !postgresColumns.has(c)), [], 'missing on PostgreSQL');
      const shared = new Set(sqliteColumns.map((c) => c.split('.')[0]));
      const extra = [...postgresColumns].filter((c) => shared.has(c.split('.')[0]) && !sqliteColumns.includes(c) && !POSTGRES_ONLY.has(c));
      assert.deepEqual(extra, [], 'columns only PostgreSQL has are named in POSTGRES_ONLY');
    } finally {
      sqlite.close();
      rmSync(dir, { recursive: true, force: true });
      await pool.end();
    }
  });
});
