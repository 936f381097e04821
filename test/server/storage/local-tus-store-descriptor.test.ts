// The descriptor the local tus store's create() opens and keeps for the upload's first write
// (server/storage/local-tus-store.ts): a write soon after uses it, a creation never written to
// closes it within a second, a removal closes it; the bytes land where they should every time.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { Upload } from '@tus/utils';
import { openDb } from '../../../server/db/open.ts';
import { createLocalStorage } from '../../../server/storage/local.ts';
import type { LocalTusStore } from '../../../server/storage/local-tus-store.ts';
import { tempDir } from '../../helpers/server.ts';
import { until } from '../../helpers/until.ts';

const dir = tempDir();
const db = openDb(dir);
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Descriptors of this process open on files under the uploads directory. */
const openUploads = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkOf(fd).startsWith(path.join(dir, 'uploads'));
    } catch {
      return false;
    }
  }).length;
const readlinkOf = (fd: string) => readlinkSync(`/proc/self/fd/${fd}`);
const id = (n: number) => `${String(n).padStart(32, 'a')}`;

test('create() keeps the descriptor for the first write; unused, it is closed within a second; a removal closes it', async () => {
  const storage = await createLocalStorage(dir, db);
  const store = storage.tusStore as LocalTusStore;
  const before = openUploads();

  await store.create(new Upload({ id: id(1), size: 5, offset: 0 }));
  assert.equal(openUploads(), before + 1, 'kept for the write');
  assert.equal(await store.write(Readable.from([Buffer.from('hello')]), id(1), 0), 5);
  await until('the write closed it', () => openUploads() === before);
  assert.equal(readFileSync(path.join(dir, 'uploads', id(1)), 'utf8'), 'hello');

  await store.create(new Upload({ id: id(2), size: 5, offset: 0 }));
  assert.equal(openUploads(), before + 1);
  await until('closed unused', () => openUploads() === before, 5000);
  assert.equal(await store.write(Readable.from([Buffer.from('later')]), id(2), 0), 5, 'a later write opens the file itself');
  assert.equal(readFileSync(path.join(dir, 'uploads', id(2)), 'utf8'), 'later');

  await store.create(new Upload({ id: id(3), size: 5, offset: 0 }));
  await store.remove(id(3));
  assert.equal(openUploads(), before, 'closed by the removal');
  await store.create(new Upload({ id: id(4), size: 5, offset: 0 }));
  await storage.removeUpload(id(4));
  assert.equal(openUploads(), before, 'closed by the storage removing the upload');
});
