// The two implementations of the repository contract, each on a real database: SQLite in a temp
// folder, and PostgreSQL started by the test (test/support/postgres.ts) with two pools on one
// database, as two server instances hold it.
import { rmSync } from 'node:fs';
import pino from 'pino';
import type { Repository } from '../../../server/db/contract.ts';
import { openDb } from '../../../server/db/open.ts';
import { createPgRepository } from '../../../server/db/pg/pg-repository.ts';
import { createPgPool } from '../../../server/db/pg/pool.ts';
import { migratePostgres } from '../../../server/db/postgres-migrations.ts';
import { checkTransactions } from '../../../server/db/sqlite-gate.ts';
import { createSqliteRepository } from '../../../server/db/sqlite-repository.ts';
import { tempDir } from '../../helpers/server.ts';
import { createDatabase, POSTGRES_MISSING, startPostgres, type PostgresServer } from '../../support/postgres.ts';

export interface RepositoryOptions {
  webhookUrls: string[];
  now: () => number;
  onEmit?: () => void;
}

export interface OpenRepositories {
  /** What one instance sees. */
  a: Repository;
  /** What a second instance sees (SQLite serves one instance: the same repository as `a`). */
  b: Repository;
  close(): Promise<void>;
}

export interface RepositoryBackend {
  name: string;
  skip: string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Repositories on a new, empty database. */
  open(options: RepositoryOptions): Promise<OpenRepositories>;
}

/** Small pools, as an instance has: the quota and claim tests wait on row locks, not on connections. */
const POOL_MAX = 4;

/**
 * `devChecks`: the SQLite gate's check of an outer call inside a transaction (server/db/sqlite-gate.ts),
 * on as in every test server, or off as in production.
 */
export function sqliteBackend({ devChecks = true }: { devChecks?: boolean } = {}): RepositoryBackend {
  return {
    name: devChecks ? 'SQLite' : 'SQLite without the development checks',
    skip: undefined,
    async start() {},
    async stop() {},
    async open(options) {
      const dir = tempDir('sl-repo-');
      const db = openDb(dir);
      if (devChecks) checkTransactions(db);
      const repo = createSqliteRepository(db, options);
      return {
        a: repo,
        b: repo,
        async close() {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

export function postgresBackend(): RepositoryBackend {
  let server: PostgresServer | undefined;
  let databases = 0;
  return {
    name: 'PostgreSQL',
    skip: POSTGRES_MISSING,
    async start() {
      server = await startPostgres();
    },
    async stop() {
      await server?.stop();
    },
    async open(options) {
      const url = await createDatabase(server!.url, `repo_${++databases}`);
      const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
      const pools = ['instance_a', 'instance_b'].map((name) => createPgPool(url, log, { max: POOL_MAX, applicationName: name }));
      await migratePostgres(pools[0]!);
      const [a, b] = pools.map((pool) => createPgRepository({ pool, ...options })) as [Repository, Repository];
      return { a, b, close: async () => void (await Promise.all(pools.map((pool) => pool.end()))) };
    },
  };
}
