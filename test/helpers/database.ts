// The database end-to-end tests run on: SQLite in each server's DATA_DIR (default), or with
// TEST_DATABASE=postgres a PostgreSQL (test/support/postgres.ts) started once per test file on first
// use and stopped after the file's last test. Every server DATA_DIR gets a database of its own, and
// the same one again when a server restarts on that DATA_DIR, as it would keep its SQLite file.
// PostgreSQL refuses local disk (server/config-database-url.ts), so in that mode every server stores on
// S3 (test/helpers/s3.ts).
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { createDatabase, startPostgres, type PostgresServer } from '../support/postgres.ts';

export type TestDatabase = 'sqlite' | 'postgres';

/** TEST_DATABASE=sqlite (default) or postgres; any other value is a mistake worth stopping for. */
export function databaseUnderTest(): TestDatabase {
  const named = process.env.TEST_DATABASE ?? '';
  if (named === '' || named === 'sqlite') return 'sqlite';
  if (named === 'postgres') return 'postgres';
  throw new Error(`TEST_DATABASE=${named}: expected sqlite or postgres`);
}

let postgres: Promise<PostgresServer> | undefined;
// Servers still running on this file's PostgreSQL. A module's `after` runs before the test file's
// own top-level ones, so the servers a file stops there would outlive their database: they are
// stopped here first (their own stop is then a no-op).
const running = new Set<() => Promise<unknown>>();

// Registered when a test file imports this module: after that file's last test.
after(async () => {
  if (!postgres) return;
  await Promise.all([...running].map((stop) => stop().catch(() => undefined)));
  await (await postgres.catch(() => undefined))?.stop();
});

/** The file's PostgreSQL, started on first call and stopped after the file's last test. */
export function sharedPostgres(): Promise<PostgresServer> {
  postgres ??= startPostgres();
  return postgres;
}

/** Until `stop` has run, the file's PostgreSQL outlives it; returns the function that forgets it. */
export function stopBeforeDatabase(stop: () => Promise<unknown>): () => void {
  running.add(stop);
  return () => running.delete(stop);
}

const databasesByDataDir = new Map<string, Promise<Record<string, string>>>();

/**
 * DATABASE_URL for a server on this DATA_DIR: nothing on SQLite; on PostgreSQL a fresh database,
 * and the same one again whenever a server restarts on that DATA_DIR.
 */
export function databaseEnvFor(dataDir: string): Promise<Record<string, string>> {
  if (databaseUnderTest() === 'sqlite') return Promise.resolve({});
  const known = databasesByDataDir.get(dataDir);
  if (known) return known;
  const env = sharedPostgres()
    .then((server) => createDatabase(server.url, `t_${randomBytes(6).toString('hex')}`))
    .then((url) => ({ DATABASE_URL: url }));
  databasesByDataDir.set(dataDir, env);
  return env;
}
