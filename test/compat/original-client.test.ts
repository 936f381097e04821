// The original Stream-Line server's client guide, run unchanged against this server: its Python
// UploadServerClient and UserSession (test/fixtures/original-client/, copied byte for byte) with
// Debian's python3-requests, for health, listing, tokens, init/part/complete, metadata, signed
// URLs, batch download and delete; on both storage backends.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { ROOT, startTestServer, type TestServer } from '../helpers/server.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { tusUpload } from '../helpers/tus.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/original-client');
// More than one page of the listing's default (50): the guide reads the first answer only.
const EXISTING_FILES = 60;

for (const backend of backendsUnderTest()) describe(`the original client guide, unchanged (${backend})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ storage: backend });
    const auth = { Authorization: `Bearer ${await server.token('guide-user')}` };
    for (let batch = 0; batch < EXISTING_FILES; batch += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, i) =>
        tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from(`existing ${batch + i}`), metadata: { filename: `e${batch + i}.txt` } }).done));
    }
  });
  after(() => server.stop());

  test('health, listing past 50 files, RS256 tokens, single and chunked uploads, metadata, links, batch ZIP and delete', async () => {
    const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-B', path.join(FIXTURE, 'run_guide.py')], {
      cwd: FIXTURE,
      env: { PATH: process.env.PATH ?? '', UPLOAD_SERVER: server.url, SERVICE_TOKEN: server.serviceToken, USER_ID: 'guide-user', EXPECTED_FILES: String(EXISTING_FILES) },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`the guide's code failed:\n${error.stderr ?? ''}${error.stdout ?? ''}`);
    });
    const seen = JSON.parse(stdout);

    assert.equal(seen.health.status, 'ok');
    assert.deepEqual(seen.token, { alg: 'RS256', sub: 'guide-user', user_id: 'guide-user', kty: 'RSA' });
    assert.equal(seen.listed_by_service, EXISTING_FILES);
    assert.equal(seen.listed_by_user, EXISTING_FILES);

    const single = seen.single.complete;
    assert.equal(single.fileKey, single.key);
    assert.match(single.key, new RegExp(`^users/guide-user/\\d{4}/\\d{2}/\\d{2}/${seen.single.init.uploadId}\\.txt$`));
    assert.deepEqual([single.filename, single.folder, single.content_type, single.size], ['hello.txt', 'main/pictures', 'text/plain', 70_000]);
    assert.equal(seen.single.part.complete, true);
    assert.equal((await server.readStored(single.key))?.length, 70_000);

    const chunked = seen.chunked.complete;
    const size = 3 * 1024 * 1024 + 12_345;
    // Part 2 sent twice is acknowledged at the same offset, not stored twice.
    assert.deepEqual(seen.chunked.offsets, [1, 2, 2, 3, 4].map((n) => Math.min(n * 1024 * 1024, size)));
    assert.deepEqual([chunked.filename, chunked.folder, chunked.size, chunked.user_id], ['video.mp4', 'veo/videos', size, 'guide-user']);
    const stored = await server.readStored(chunked.key);
    assert.equal(createHash('sha256').update(stored!).digest('hex'), chunked.sha256);
    assert.deepEqual(seen.metadata, Object.fromEntries(Object.entries(chunked).filter(([name]) => name !== 'fileKey')));

    assert.equal(seen.inline.size, 13_000);
    assert.deepEqual(seen.signed, { status: 200, range_status: 206 });
    assert.deepEqual(seen.batch, ['main/pictures/hello.txt', 'notes.txt']);
    assert.equal(seen.deleted, true);
    assert.equal(seen.after_delete, 404);
    assert.equal(await server.readStored(seen.inline.key), null);
  });
});
