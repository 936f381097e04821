// A write to local disk that fails mid-body (the client cut its connection) ends only once what
// reached the store is in the file (server/storage/local-tus-store.ts). The upload's offset is the
// file's size: read as soon as the write has failed, it must already be final, or a client that
// asks HEAD at once is told an offset that moves after the answer, and its next PATCH is refused.
import assert from 'node:assert/strict';
import { statSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { Upload } from '@tus/utils';
import { openDb } from '../../../server/db/open.ts';
import { createLocalStorage } from '../../../server/storage/local.ts';
import type { LocalTusStore } from '../../../server/storage/local-tus-store.ts';
import { tempDir } from '../../helpers/server.ts';

const dir = tempDir();
const db = openDb(dir);
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

/** A body that delivers `chunks`, then fails as a cut connection does. */
function cutAfter(chunks: Buffer[]): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next < chunks.length) this.push(chunks[next++]);
      else this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    },
  });
}

test('a write cut mid-body fails only once its bytes are in the file: the offset read then is final', async () => {
  const storage = await createLocalStorage(dir, db);
  const store = storage.tusStore as LocalTusStore;
  // Large chunks, so the last one is still being written when the body fails.
  for (const [n, chunks] of [[1, [16 * MiB]], [2, [MiB, 8 * MiB]], [3, [64 * 1024, 64 * 1024, 16 * MiB]]] as const) {
    const id = String(n).padStart(32, 'c');
    await store.create(new Upload({ id, size: 64 * MiB, offset: 0 }));
    const sent = chunks.reduce((sum, size) => sum + size, 0);
    await assert.rejects(store.write(cutAfter(chunks.map((size) => Buffer.alloc(size, n))), id, 0));
    const offsetThen = (await store.getUpload(id)).offset;
    assert.equal(offsetThen, sent, `write ${n}: every byte handed to the store is in the file once the write has failed`);
    assert.equal(statSync(path.join(dir, 'uploads', id)).size, sent);
  }
});
