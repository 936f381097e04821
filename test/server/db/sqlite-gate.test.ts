// One SQLite connection serves the repository and tus's upload info (server/db/sqlite-gate.ts): a
// tus info statement made while another request's transaction is open waits for it to end, so a
// transaction that rolls back never takes the info with it (the repository's own outer calls are
// held to the same in test/server/db/repository-contract.test.ts).
//
// What each caller is told must hold whatever the others do: a transaction reported done is
// committed (a second connection to the file sees it), one reported failed left nothing.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { after, describe, test } from 'node:test';
import type { Upload } from '@tus/utils';
import { openDb, type Db } from '../../../server/db/open.ts';
import { checkTransactions } from '../../../server/db/sqlite-gate.ts';
import { createSqliteRepository } from '../../../server/db/sqlite-repository.ts';
import { TusInfoRepo } from '../../../server/db/tus-info-repo.ts';
import { tempDir } from '../../helpers/server.ts';

// With the development check (as the test suite runs) and without it (as production runs).
for (const devChecks of [true, false]) describe(`the SQLite connection gate, ${devChecks ? 'with' : 'without'} the development checks`, () => {
  const dir = tempDir();
  const db = openDb(dir);
  if (devChecks) checkTransactions(db);
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

  test('transactions begun together stand alone: one reported done is committed, one that failed left nothing', async () => {
    db.exec('CREATE TABLE gate_rows (name TEXT PRIMARY KEY)');
    const insert = db.prepare<[string]>('INSERT INTO gate_rows (name) VALUES (?)');
    const other = new Database(path.join(dir, 'stream-line.sqlite'), { readonly: true });
    const seenElsewhere = (name: string) => other.prepare('SELECT 1 FROM gate_rows WHERE name = ?').get(name) !== undefined;
    try {
      const names = Array.from({ length: 12 }, (_, i) => `row-${i}`);
      const fails = (name: string) => name.endsWith('3') || name.endsWith('7');
      const seenWhenSettled = new Map<string, boolean>();
      const settled = await Promise.allSettled(names.map(async (name) => {
        try {
          await repo.atomically(async () => {
            insert.run(name);
            await Promise.resolve();
            if (fails(name)) throw new Error(`${name} refused`);
          });
        } finally {
          seenWhenSettled.set(name, seenElsewhere(name));
        }
      }));
      for (const [i, name] of names.entries()) {
        assert.equal(settled[i]!.status, fails(name) ? 'rejected' : 'fulfilled', name);
        assert.equal(seenWhenSettled.get(name), !fails(name), `${name}: seen by another connection the moment its caller was told`);
        assert.equal(seenElsewhere(name), !fails(name), name);
      }
    } finally {
      other.close();
    }
  });

  test('a full database fails what it must and nothing else: whatever was reported done is committed', async () => {
    // A separate file: the size limit below is the connection's.
    const full = tempDir();
    const small: Db = openDb(full);
    const smallRepo = createSqliteRepository(small, { webhookUrls: [], now: Date.now });
    small.exec('CREATE TABLE gate_full (name TEXT PRIMARY KEY, data BLOB)');
    small.pragma(`max_page_count = ${(small.pragma('page_count', { simple: true }) as number) + 8}`);
    const insert = small.prepare<[string, Buffer]>('INSERT INTO gate_full (name, data) VALUES (?, ?)');
    try {
      const rows = [['small-1', 100], ['too-large', 1024 * 1024], ['small-2', 100]] as const;
      const settled = await Promise.allSettled(rows.map(([name, size]) => smallRepo.atomically(async () => void insert.run(name, Buffer.alloc(size)))));
      assert.equal(settled[1]!.status, 'rejected');
      assert.match(String((settled[1] as PromiseRejectedResult).reason), /full/i);
      const kept = new Set(small.prepare<[], { name: string }>('SELECT name FROM gate_full').all().map((r) => r.name));
      for (const [i, [name]] of rows.entries()) assert.equal(kept.has(name), settled[i]!.status === 'fulfilled', `${name}: ${settled[i]!.status}`);
      // The connection serves on: the next transaction commits.
      await smallRepo.atomically(async () => void insert.run('after', Buffer.alloc(10)));
      assert.ok(small.prepare('SELECT 1 FROM gate_full WHERE name = ?').get('after'));
    } finally {
      small.close();
      rmSync(full, { recursive: true, force: true });
    }
  });
});
