// One "server instance" of the PostgreSQL locker for tests: its own pool (named by
// application_name, so pg_stat_activity tells its connections apart) and its own locker.
import pg from 'pg';
import pino from 'pino';
import { createPgLocker, type PgLocker, type PgLockerOptions } from '../../../server/locker/pg-locker.ts';

export interface PgInstance {
  name: string;
  pool: pg.Pool;
  locker: PgLocker;
  close(): Promise<void>;
}

/** Short figures so that lease tests end quickly; a heartbeat of a sixth of the lease survives a busy machine. */
export const TEST_LOCKER = { leaseMs: 3_000, heartbeatMs: 500, pollMs: 100 } as const;
export const POOL_MAX = 4;

export async function openInstance(url: string, name: string, options: Partial<Omit<PgLockerOptions, 'pool' | 'log'>> = {}): Promise<PgInstance> {
  const pool = new pg.Pool({ connectionString: url, max: POOL_MAX, application_name: name });
  pool.on('error', () => {}); // an idle connection cut by the server (tests terminate some on purpose)
  const locker = await createPgLocker({ pool, log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...TEST_LOCKER, ...options });
  let closed = false;
  return {
    name,
    pool,
    locker,
    async close() {
      if (closed) return;
      closed = true;
      await locker.close();
      await pool.end();
    },
  };
}
