// tus's upload info of finished uploads (server/db/tus-info-repo.ts forget()): read as gone at
// once, deleted in batches a moment later; a batch that fails is kept as gone and deleted later,
// and one lost to a crash leaves rows the start-up repair removes as orphans.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import type { Upload } from '@tus/utils';
import { openDb } from '../../../server/db/open.ts';
import { TusInfoRepo } from '../../../server/db/tus-info-repo.ts';
import { tempDir } from '../../helpers/server.ts';
import { until } from '../../helpers/until.ts';

const dir = tempDir();
const db = openDb(dir);
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});
const rows = () => (db.prepare('SELECT id FROM tus_uploads ORDER BY id').all() as { id: string }[]).map((r) => r.id);
const upload = (id: string) => ({ id, size: 10, offset: 0, metadata: {}, creation_date: new Date(0).toISOString() }) as unknown as Upload;

test('forget(): gone for every read at once, the rows deleted together soon after', async () => {
  const info = new TusInfoRepo(db);
  for (const id of ['f1', 'f2', 'f3', 'kept']) await info.set(id, upload(id));
  for (const id of ['f1', 'f2', 'f3']) info.forget(id);
  assert.equal(await info.get('f1'), undefined);
  assert.equal(await info.has('f2'), false);
  assert.deepEqual(await info.list(), ['kept']);
  await until('the forgotten rows deleted', () => rows().join() === 'kept');
  assert.equal(await info.has('kept'), true);
  await info.delete('kept');
});

test('forget(): a batch that cannot be written stays gone to reads, and is deleted with a later batch', async () => {
  const info = new TusInfoRepo(db);
  for (const id of ['a', 'b']) await info.set(id, upload(id));
  // An exclusive lock held by another connection makes the batch's write fail (SQLITE_BUSY).
  const other = openDb(dir);
  other.pragma('busy_timeout = 0');
  other.exec('BEGIN EXCLUSIVE');
  db.pragma('busy_timeout = 0');
  try {
    info.forget('a');
    // The batch runs (and fails) in the turn forget() asked for, before this one.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(rows(), ['a', 'b'], 'not deleted');
    assert.equal(await info.get('a'), undefined, 'still read as gone');
  } finally {
    other.exec('ROLLBACK');
    other.close();
    db.pragma('busy_timeout = 5000');
  }
  info.forget('b');
  await until('both deleted with the next batch', () => rows().length === 0);
});
