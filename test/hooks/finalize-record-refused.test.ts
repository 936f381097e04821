// A finish whose record cannot be written after its bytes were moved to the file's key (a fault of
// the database: here a trigger that refuses the file's row). A creation-with-upload (POST) that
// fails is discarded, since its client never learnt the upload's URL and will create another: the
// moved bytes go with it, as with a termination. A PATCH that fails keeps the upload, and the
// client's HEAD records it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { databaseUnderTest } from '../helpers/database.ts';
import { recordCount, recordQuery } from '../helpers/records.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createUpload, headUpload, metadataHeader, patchUpload, TUS, tusUpload } from '../helpers/tus.ts';

const REFUSED = 'unrecordable.txt';

/** The database refuses the file row of any upload named REFUSED, until `allow`. */
async function refuseRecords(server: TestServer): Promise<{ allow(): Promise<void> }> {
  if (databaseUnderTest() === 'postgres') {
    await recordQuery(server, `CREATE FUNCTION refuse_record() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.filename = '${REFUSED}' THEN RAISE EXCEPTION 'the record cannot be written'; END IF; RETURN NEW; END $$`);
    await recordQuery(server, 'CREATE TRIGGER refuse_record BEFORE INSERT ON files FOR EACH ROW EXECUTE FUNCTION refuse_record()');
    return { allow: async () => void (await recordQuery(server, 'DROP TRIGGER refuse_record ON files')) };
  }
  await recordQuery(server, `CREATE TRIGGER refuse_record BEFORE INSERT ON files WHEN NEW.filename = '${REFUSED}'
    BEGIN SELECT RAISE(ABORT, 'the record cannot be written'); END`);
  return { allow: async () => void (await recordQuery(server, 'DROP TRIGGER refuse_record')) };
}

async function storedKeys(server: TestServer, userId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const file of server.services.storage.listFiles()) if (file.key.startsWith(`users/${userId}/`)) keys.push(file.key);
  return keys;
}

for (const backend of backendsUnderTest()) {
  describe(`a finish whose record cannot be written (${backend})`, () => {
    test('creation-with-upload: an error, and nothing left behind (bytes at the key, upload, reservation); the server goes on', async () => {
      const server = await startTestServer({ storage: backend });
      try {
        const refusal = await refuseRecords(server);
        const auth = { Authorization: `Bearer ${await server.token('ivy')}` };
        const data = randomBytes(300);
        const res = await fetch(`${server.url}/v1/uploads`, {
          method: 'POST',
          headers: { ...TUS, ...auth, 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ filename: REFUSED }), 'Content-Type': 'application/offset+octet-stream' },
          body: data,
        });
        assert.equal(res.status, 500);
        assert.equal((await res.json()).code, 'internal');
        assert.deepEqual(await storedKeys(server, 'ivy'), [], 'no bytes at a file key');
        assert.deepEqual(await server.services.storage.listUploadIds(), [], 'no upload in storage');
        assert.equal(await recordCount(server, 'SELECT count(*) AS n FROM uploads'), 0);
        assert.deepEqual(await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json(), { used_bytes: 0, reserved_bytes: 0, quota_bytes: 10 * 1024 ** 3 });

        await refusal.allow();
        const again = await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: REFUSED } }).done;
        assert.deepEqual(await storedKeys(server, 'ivy'), [again.fileKey]);
      } finally {
        await server.stop();
      }
    });

    test('PATCH: an error, the upload kept with its bytes; the HEAD once the database takes it records the file', async () => {
      const server = await startTestServer({ storage: backend });
      try {
        const refusal = await refuseRecords(server);
        const auth = { Authorization: `Bearer ${await server.token('jon')}` };
        const data = randomBytes(300);
        const url = (await createUpload(server.url, auth, data.length, { filename: REFUSED })).headers.get('location')!;
        assert.equal((await patchUpload(url, auth, 0, data)).status, 500);
        await refusal.allow();
        const head = await headUpload(url, auth);
        assert.equal(head.status, 200);
        const key = head.headers.get('x-file-key')!;
        assert.deepEqual(await storedKeys(server, 'jon'), [key]);
        const file = await (await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth })).json();
        assert.deepEqual([file.size, file.sha256], [data.length, createHash('sha256').update(data).digest('hex')]);
      } finally {
        await server.stop();
      }
    });

    test('PATCH, then the client terminates the upload: the moved bytes go with it', async () => {
      const server = await startTestServer({ storage: backend });
      try {
        await refuseRecords(server);
        const auth = { Authorization: `Bearer ${await server.token('kim')}` };
        const url = (await createUpload(server.url, auth, 300, { filename: REFUSED })).headers.get('location')!;
        assert.equal((await patchUpload(url, auth, 0, randomBytes(300))).status, 500);
        assert.equal((await fetch(url, { method: 'DELETE', headers: { ...TUS, ...auth } })).status, 204);
        assert.deepEqual(await storedKeys(server, 'kim'), []);
        assert.equal(await recordCount(server, 'SELECT count(*) AS n FROM uploads'), 0);
        assert.deepEqual(await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json(), { used_bytes: 0, reserved_bytes: 0, quota_bytes: 10 * 1024 ** 3 });
      } finally {
        await server.stop();
      }
    });
  });
}
