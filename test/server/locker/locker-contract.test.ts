// tus's Locker expectations (locker-contract.ts) against MemoryLocker, which they were written for,
// and the PostgreSQL locker: one instance, and two instances taking turns (odd locks on one, even on
// the other), as two servers behind one address would.
import { after, before, describe } from 'node:test';
import { MemoryLocker } from '@tus/server';
import type { Locker } from '@tus/utils';
import pg from 'pg';
import { migratePostgres } from '../../../server/db/postgres-migrations.ts';
import { createDatabase, POSTGRES_MISSING, startPostgres, type PostgresServer } from '../../support/postgres.ts';
import { lockerContract } from './locker-contract.ts';
import { openInstance, type PgInstance } from './pg-instance.ts';

describe('MemoryLocker', () => {
  lockerContract(async (options) =>
    new MemoryLocker(options?.acquireTimeoutMs === undefined ? undefined : { acquireLockTimeout: options.acquireTimeoutMs }));
});

describe('PostgreSQL locker', { skip: POSTGRES_MISSING, timeout: 180_000 }, () => {
  let server: PostgresServer;
  let url: string;
  const instances: PgInstance[] = [];
  const open = async (name: string, acquireTimeoutMs?: number) => {
    const instance = await openInstance(url, name, acquireTimeoutMs === undefined ? {} : { acquireTimeoutMs });
    instances.push(instance);
    return instance;
  };

  before(async () => {
    server = await startPostgres();
    url = await createDatabase(server.url, 'contract');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await migratePostgres(pool);
    await pool.end();
  });
  after(async () => {
    await Promise.all(instances.map((i) => i.close()));
    await server?.stop();
  });

  describe('one instance', () => {
    lockerContract(async (options) => (await open('one', options?.acquireTimeoutMs)).locker);
  });

  describe('two instances', () => {
    lockerContract(async (options) => {
      const pair = [await open('left', options?.acquireTimeoutMs), await open('right', options?.acquireTimeoutMs)];
      let turn = 0;
      const alternating: Locker = { newLock: (id) => pair[turn++ % 2]!.locker.newLock(id) };
      return alternating;
    });
  });
});
