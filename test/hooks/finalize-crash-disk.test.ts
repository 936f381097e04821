// The start-up repair of the states a crash leaves on local disk: a commit interrupted before or
// after its rename, a deletion half done, a commit whose bytes are gone, orphaned upload bytes. The
// states are forged in DATA_DIR's own layout, so this is local disk's alone (test/database-modes.mjs);
// the S3 states are fabricated in test/server/storage-contract.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startTestServer, tempDir } from '../helpers/server.ts';
import { createUpload, headUpload, patchUpload, tusUpload } from '../helpers/tus.ts';

describe('crash and restart', () => {
  test('start-up repair finishes interrupted commits and deletions and sweeps orphaned bytes', async () => {
    const dataDir = tempDir();
    let server = await startTestServer({ dataDir });
    const auth = { Authorization: `Bearer ${await server.token('dave')}` };
    // Four finished files, then the database and disk are put in the states a crash can leave.
    const files = [];
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(1000 + i);
      files.push({ data, record: JSON.parse((await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: `f${i}.txt` } }).done).body) });
    }
    const unfinished = await createUpload(server.url, auth, 10, { filename: 'keep.txt' });
    const unfinishedUrl = unfinished.headers.get('location')!;
    await patchUpload(unfinishedUrl, auth, 0, Buffer.from('12345'));
    await server.stop({ keepData: true });

    const db = new Database(path.join(dataDir, 'stream-line.sqlite'));
    const [a, b, c, d] = files.map((f) => f.record);
    const tusInfo = db.prepare("INSERT INTO tus_uploads (id, info) VALUES (?, '{}')");
    // a: crashed after the commit transaction, before the rename: bytes and tus's info still there.
    const aUpload = a.key.split('/').pop().replace(/\..*$/, '');
    renameSync(path.join(dataDir, a.key), path.join(dataDir, 'uploads', aUpload));
    tusInfo.run(aUpload);
    db.prepare("UPDATE files SET state = 'committing' WHERE key = ?").run(a.key);
    // b: crashed after the rename, before 'ready'.
    db.prepare("UPDATE files SET state = 'committing' WHERE key = ?").run(b.key);
    // c: crashed in the middle of a deletion.
    db.prepare("UPDATE files SET state = 'deleting' WHERE key = ?").run(c.key);
    // d: committing, but its bytes are gone from both places: the record must not survive.
    db.prepare("UPDATE files SET state = 'committing' WHERE key = ?").run(d.key);
    rmSync(path.join(dataDir, d.key));
    // An orphan: upload bytes and tus info the database does not know as an upload.
    mkdirSync(path.join(dataDir, 'uploads'), { recursive: true });
    writeFileSync(path.join(dataDir, 'uploads', 'f'.repeat(32)), 'orphan');
    tusInfo.run('f'.repeat(32));
    db.close();

    server = await startTestServer({ dataDir });
    try {
      const list = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json();
      assert.deepEqual(list.files.map((f: { key: string }) => f.key).sort(), [a.key, b.key].sort());
      assert.ok(readFileSync(path.join(dataDir, a.key)).equals(files[0]!.data));
      assert.ok(readFileSync(path.join(dataDir, b.key)).equals(files[1]!.data));
      assert.equal(existsSync(path.join(dataDir, c.key)), false);
      const unfinishedId = unfinishedUrl.split('/').pop()!;
      assert.deepEqual(readdirSync(path.join(dataDir, 'uploads')), [unfinishedId]);
      assert.deepEqual(await server.services.storage.listUploadIds(), [unfinishedId]);
      assert.equal((await server.services.repo.filesInTransition()).length, 0);
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [a.size + b.size, 10]);
      // The unfinished upload survived the restart and still completes.
      assert.equal(Number((await headUpload(unfinishedUrl.replace(/^http:\/\/[^/]+/, server.url), auth)).headers.get('upload-offset')), 5);
    } finally {
      await server.stop();
    }
  });
});
