// Local disk beyond the shared contract: tus's upload info lives in the database, and a data dir
// that still holds it as `<id>.json` beside the data (written before the table existed) keeps every
// unfinished upload resumable; directories are made once, and made again when removed from under
// the running server.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startTestServer, tempDir } from '../../helpers/server.ts';
import { createUpload, headUpload, patchUpload, tusUpload } from '../../helpers/tus.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const idOf = (url: string) => url.split('/').pop()!;
const onServer = (url: string, base: string) => url.replace(/^http:\/\/[^/]+/, base);

describe('local disk storage', () => {
  test('an upload whose tus info is a `.json` sidecar (a data dir from before the upgrade) resumes, and the sidecar becomes a row', async () => {
    const dataDir = tempDir();
    let server = await startTestServer({ dataDir });
    const auth = { Authorization: `Bearer ${await server.token('olga')}` };
    const data = randomBytes(3000);
    const url = (await createUpload(server.url, auth, data.length, { filename: 'old.bin' })).headers.get('location')!;
    assert.equal((await patchUpload(url, auth, 0, data.subarray(0, 1200))).status, 204);
    await server.stop({ keepData: true });

    // The same upload as @tus/file-store's own configstore leaves it: the JSON in uploads/<id>.json.
    const sidecar = path.join(dataDir, 'uploads', `${idOf(url)}.json`);
    const db = new Database(path.join(dataDir, 'stream-line.sqlite'));
    const row = db.prepare<[string], { info: string }>('SELECT info FROM tus_uploads WHERE id = ?').get(idOf(url));
    assert.ok(row, 'tus info is kept in the database');
    writeFileSync(sidecar, row.info);
    db.prepare('DELETE FROM tus_uploads WHERE id = ?').run(idOf(url));
    db.close();

    server = await startTestServer({ dataDir });
    try {
      const resumed = onServer(url, server.url);
      const head = await headUpload(resumed, auth);
      assert.equal(head.status, 200);
      assert.equal(existsSync(sidecar), false, 'the sidecar is imported and removed at start');
      assert.equal(head.headers.get('upload-offset'), '1200');
      assert.equal(head.headers.get('upload-length'), String(data.length));
      const done = await patchUpload(resumed, auth, 1200, data.subarray(1200));
      assert.ok(done.ok, await done.clone().text());
      const key = done.headers.get('x-file-key')!;
      const meta = await (await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth })).json();
      assert.deepEqual([meta.filename, meta.size, meta.sha256], ['old.bin', data.length, sha256(data)]);
      assert.ok(readFileSync(path.join(dataDir, key)).equals(data));
      assert.deepEqual(readdirSync(path.join(dataDir, 'uploads')), []);
      assert.deepEqual(await server.services.storage.listUploadIds(), []);
    } finally {
      await server.stop();
    }
  });

  test('a key directory or the uploads directory removed from under the running server is made again', async () => {
    const server = await startTestServer();
    try {
      const auth = { Authorization: `Bearer ${await server.token('pavel')}` };
      const upload = async (name: string) => {
        const data = randomBytes(500);
        const result = await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: name } }).done;
        assert.ok(result.fileKey, result.body);
        assert.ok(readFileSync(path.join(server.dataDir, result.fileKey)).equals(data));
        return result.fileKey;
      };
      const first = await upload('first.bin');
      // users/pavel/yyyy/mm/dd: the directory the next file of the day goes to, known to exist.
      rmSync(path.join(server.dataDir, path.dirname(first)), { recursive: true });
      const second = await upload('second.bin');
      assert.equal(path.dirname(second), path.dirname(first));

      rmSync(path.join(server.dataDir, 'uploads'), { recursive: true });
      await upload('third.bin');
    } finally {
      await server.stop();
    }
  });
});
