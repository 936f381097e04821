// A finish that fails on local disk: the failure is forged in the disk's layout (a plain file where
// the user's directory must be created), and the upload stays resumable; HEAD never reports success
// before the file is recorded.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { startTestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, patchUpload } from '../../helpers/tus.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('a finish that fails', () => {
  test('leaves a resumable upload whose HEAD never reports success until the file is recorded', async () => {
    const server = await startTestServer();
    try {
      const auth = { Authorization: `Bearer ${await server.token('kate')}` };
      const data = randomBytes(5000);
      const url = (await createUpload(server.url, auth, data.length, { filename: 'k.txt' })).headers.get('location')!;
      // A real failure: a plain file where the user's directory must be created.
      mkdirSync(path.join(server.dataDir, 'users'), { recursive: true });
      writeFileSync(path.join(server.dataDir, 'users', 'kate'), 'in the way');
      const patch = await patchUpload(url, auth, 0, data);
      assert.equal(patch.status, 500);
      assert.equal((await patch.json()).code, 'internal');
      const failingHead = await headUpload(url, auth);
      assert.notEqual(failingHead.status, 200, 'HEAD must not report a finished upload that was never recorded');
      assert.equal((await fetch(`${server.url}/v1/files/all`, { headers: auth }).then((r) => r.json())).files.length, 0);
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [0, data.length]);

      rmSync(path.join(server.dataDir, 'users', 'kate'));
      const head = await headUpload(url, auth);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), String(data.length));
      const key = head.headers.get('x-file-key')!;
      assert.ok(readFileSync(path.join(server.dataDir, key)).equals(data));
      const record = await (await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth })).json();
      assert.equal(record.sha256, sha256(data));
      assert.equal((await headUpload(url, auth)).headers.get('x-file-key'), key);
    } finally {
      await server.stop();
    }
  });
});
