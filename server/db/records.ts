// Where an instance keeps its records and upload locks: SQLite in DATA_DIR with tus's in-process
// locker (one instance), or PostgreSQL at DATABASE_URL with the shared locker (several instances,
// docs/design-several-instances.md). The server (server/services.ts) and `npm run check-storage`
// open them here.
import { randomBytes } from 'node:crypto';
import { MemoryLocker } from '@tus/server';
import type { Locker } from '@tus/utils';
import type { Logger } from 'pino';
import { fileSecretStore, readSecretsFile, type SecretStore } from '../auth/secrets.ts';
import type { Config } from '../config.ts';
import type { Repository } from './contract.ts';
import { openDb, type Db } from './open.ts';
import { checkTransactions } from './sqlite-gate.ts';
import { createSqliteRepository } from './sqlite-repository.ts';

/** Where the records and the upload locks live: SQLite in DATA_DIR, or PostgreSQL at DATABASE_URL. */
export interface Records {
  sqlite: Db | undefined;
  repository(options: { webhookUrls: readonly string[]; now: () => number; onEmit: () => void }): Repository;
  locker: Locker;
  /** Names this running process among the instances on the database (its locker's channel on PostgreSQL). */
  instanceId: string;
  lockDrainTimeoutMs: number | undefined;
  /** Where generated secrets are kept: DATA_DIR/secrets.json, or PostgreSQL for every instance. */
  secrets: SecretStore;
  close(): Promise<void>;
}

/** The records as configured. */
export function openRecords(config: Readonly<Config>, log: Logger): Promise<Records> {
  return config.databaseUrl === undefined ? Promise.resolve(openSqlite(config)) : openPostgres(config.databaseUrl, config.dataDir, log);
}

function openSqlite(config: Readonly<Config>): Records {
  const db = openDb(config.dataDir);
  if (config.devChecks) checkTransactions(db);
  return {
    sqlite: db,
    repository: (options) => createSqliteRepository(db, options),
    locker: new MemoryLocker(),
    instanceId: randomBytes(8).toString('hex'),
    lockDrainTimeoutMs: undefined,
    secrets: fileSecretStore(config.dataDir),
    // Closing checkpoints the WAL into the main file.
    close: async () => {
      db.close();
    },
  };
}

/**
 * Several instances share one PostgreSQL database (docs/design-several-instances.md): its schema is
 * brought up to date here (safe when instances start together), and the upload locks are rows in
 * it, so a request may land on any instance.
 */
async function openPostgres(url: string, dataDir: string, log: Logger): Promise<Records> {
  // Loaded only when chosen, as the S3 backend is: one instance on SQLite never needs them.
  const { createPgPool } = await import('./pg/pool.ts');
  const { migratePostgres } = await import('./postgres-migrations.ts');
  const { createPgRepository } = await import('./pg/pg-repository.ts');
  const { createPgLocker } = await import('../locker/pg-locker.ts');
  const { pgSecretStore } = await import('./pg/pg-secrets.ts');
  const pool = createPgPool(url, log);
  // The upload locks get connections of their own. Sharing the repository's pool, a lock claim
  // queued behind transactions that wait on one user's quota row (many creations at once by one
  // user) and ran out of its wait: a request was told 423 for a lock nobody held.
  const lockPool = createPgPool(url, log, { max: LOCK_POOL_SIZE, applicationName: 'stream-line-locks' });
  try {
    await migratePostgres(pool);
    const locker = await createPgLocker({ pool: lockPool, log });
    return {
      sqlite: undefined,
      repository: (options) => createPgRepository({ pool, ...options }),
      locker,
      instanceId: locker.instanceId,
      // A request that another instance asked to release its lock is aborted this soon, so the
      // newer request proceeds within about a second (tus waits 3 s unless told).
      lockDrainTimeoutMs: PG_LOCK_DRAIN_MS,
      // An instance that kept them in DATA_DIR/secrets.json before brings them along.
      secrets: pgSecretStore(pool, () => readSecretsFile(dataDir)),
      async close() {
        await locker.close();
        await Promise.all([pool.end(), lockPool.end()]);
      },
    };
  } catch (error) {
    await Promise.all([pool.end(), lockPool.end()]);
    throw error;
  }
}

// Each lock statement is one round trip; two connections keep claims and renewals moving while one waits.
const LOCK_POOL_SIZE = 2;

const PG_LOCK_DRAIN_MS = 500;
