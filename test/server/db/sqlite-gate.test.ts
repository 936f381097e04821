// One SQLite connection serves the repository and tus's upload info (server/db/sqlite-gate.ts): a
// tus info statement made while another request's transaction is open waits for it to end, so a
// transaction that rolls back never takes the info with it (the repository's own outer calls are
// held to the same in test/server/db/repository-contract.test.ts).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { Upload } from '@tus/utils';
import { openDb } from '../../../server/db/open.ts';
import { createSqliteRepository } from '../../../server/db/sqlite-repository.ts';
import { TusInfoRepo } from '../../../server/db/tus-info-repo.ts';
import { tempDir } from '../../helpers/server.ts';

describe('the SQLite connection gate', () => {
  const dir = tempDir();
  const db = openDb(dir);
  const repo = createSqliteRepository(db, { webhookUrls: [], now: Date.now });
  const info = new TusInfoRepo(db);
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A transaction held open until released, which then rolls back. */
  async function heldTransaction(): Promise<{ release: () => void; ended: Promise<unknown> }> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let began!: () => void;
    const open = new Promise<void>((resolve) => (began = resolve));
    const ended = repo.atomically(async (tx) => {
      await tx.ping();
      began();
      await held;
      throw new Error('refused');
    });
    await open;
    return { release, ended };
  }

  test('tus upload info written while another transaction is open is kept when that transaction rolls back', async () => {
    const id = 'gate-tus-info';
    const { release, ended } = await heldTransaction();
    const writing = info.set(id, { id, size: 10, offset: 0 } as Upload);
    release();
    await assert.rejects(ended, /refused/);
    await writing;
    assert.deepEqual(await info.get(id), { id, size: 10, offset: 0 });
  });

  test('transactions begun in the same tick run one after the other; a statement waiting with them stays out of them', async () => {
    const id = 'gate-same-tick';
    const order: string[] = [];
    const transaction = (name: string) =>
      repo.atomically(async (tx) => {
        order.push(`${name} begins`);
        await tx.ping();
        order.push(`${name} ends`);
        if (name === 'b') throw new Error('refused');
      });
    const results = await Promise.allSettled([transaction('a'), info.set(id, { id, size: 1, offset: 0 } as Upload), transaction('b'), transaction('c')]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[2] as PromiseRejectedResult).reason), /refused/);
    assert.deepEqual(order, ['a begins', 'a ends', 'b begins', 'b ends', 'c begins', 'c ends']);
    assert.deepEqual(await info.get(id), { id, size: 1, offset: 0 }, 'kept although b rolled back');
  });

  test('two transactions begun in the same tick run one after the other', async () => {
    const both = await Promise.all(['a', 'b'].map((name) => repo.atomically(async (tx) => {
      await tx.ping();
      return (await tx.ping()) && name;
    })));
    assert.deepEqual(both, ['a', 'b']);
  });

  test('a statement made in the tick a transaction begins is not taken into it', async () => {
    const id = 'gate-same-tick-info';
    const rolledBack = repo.atomically(async (tx) => {
      await tx.ping();
      throw new Error('refused');
    });
    const writing = info.set(id, { id, size: 2, offset: 0 } as Upload);
    await assert.rejects(rolledBack, /refused/);
    await writing;
    assert.deepEqual(await info.get(id), { id, size: 2, offset: 0 });
  });
});
