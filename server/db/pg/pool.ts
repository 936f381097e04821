// The pools an instance keeps to PostgreSQL: one for the repository, a smaller one for the upload
// locker (which adds its own LISTEN connection; server/db/records.ts). A handful of connections serves any number of uploads:
// no connection is held per request or per lock, only for one statement or one transaction.
import pg from 'pg';
import type { Logger } from 'pino';

export interface PgPoolOptions {
  /** Connections at most; a quota decision holds one for its transaction, everything else for one round trip. */
  max?: number;
  /** Names the instance in pg_stat_activity. */
  applicationName?: string;
}

export function createPgPool(url: string, log: Logger, options: PgPoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 8,
    application_name: options.applicationName ?? 'stream-line',
    // A request waits this long for a free connection, then fails instead of queueing forever.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection cut by the server (restart, failover) emits 'error' on the pool; unheard,
  // it would end the process. The pool replaces the connection at the next query.
  pool.on('error', (err) => log.warn({ err }, 'an idle PostgreSQL connection was closed'));
  return pool;
}
