// The SDK (clients/sdk) against a real server: every method of the service client and the user
// session, and the typed errors a caller meets.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, afterEach, before, describe, test } from 'node:test';
import { createServiceClient, createUserSession, isStreamLineError, StreamLineError, type StreamLineErrorCode } from '../../clients/sdk/node.ts';
import { sha256OfBlob } from '../../clients/sdk/source-browser.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { readWithYauzl } from '../helpers/zip.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

async function rejectsWith(promise: Promise<unknown>, code: StreamLineErrorCode, status: number): Promise<StreamLineError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof StreamLineError, `expected a StreamLineError, got ${String(error)}`);
  assert.equal(error.code, code, `code (detail: ${error.detail})`);
  assert.equal(error.status, status);
  return error;
}

describe('SDK service client', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());
  const service = () => createServiceClient({ baseUrl: server.url, serviceToken: server.serviceToken });

  test('healthCheck and getJwks', async () => {
    const health = await service().healthCheck();
    assert.equal(health.status, 'ok');
    assert.equal(health.db.ok, true);
    const jwks = await service().getJwks();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.kty, 'RSA');
    assert.equal('d' in jwks.keys[0]!, false, 'no private part');
  });

  test('generateUserToken mints a token for that user, valid the hours asked', async () => {
    const minted = await service().generateUserToken('carol', 2);
    assert.equal(minted.user_id, 'carol');
    const hours = (Date.parse(minted.expires_at) - Date.now()) / 3600_000;
    assert.ok(hours > 1.9 && hours <= 2, `expires in ${hours} h`);
    const session = createUserSession({ baseUrl: server.url, token: minted.token });
    assert.deepEqual(await session.listMyFiles(), { files: [], next_cursor: null });
    await rejectsWith(service().generateUserToken('carol', 0), 'invalid_parameter', 400);
    await rejectsWith(service().generateUserToken('../etc', 1), 'invalid_user_id', 400);
  });

  test('createUserSession, then list / metadata / usage / delete for that user', async () => {
    const dave = await service().createUserSession('dave');
    const a = await dave.upload(Buffer.from('first'), { filename: 'a.txt', folder: 'docs' });
    const b = await dave.upload(Buffer.from('second!'), { filename: 'b.txt', folder: 'docs' });
    const c = await dave.upload(Buffer.from('third'), { filename: 'c.txt' });

    const all = await service().listUserFiles('dave');
    assert.deepEqual(new Set(all.files.map((f) => f.key)), new Set([a.key, b.key, c.key]));
    const docs = await service().listUserFiles('dave', { folder: 'docs' });
    assert.deepEqual(docs.files.map((f) => f.filename).sort(), ['a.txt', 'b.txt']);
    const page1 = await service().listUserFiles('dave', { limit: 2 });
    assert.equal(page1.files.length, 2);
    assert.ok(page1.next_cursor);
    const page2 = await service().listUserFiles('dave', { limit: 2, cursor: page1.next_cursor });
    assert.equal(page2.files.length, 1);
    assert.equal(page2.next_cursor, null);

    assert.deepEqual(await service().getFileMetadata(b.key), b);
    assert.deepEqual(await service().userUsage('dave'), { used_bytes: 17, reserved_bytes: 0, quota_bytes: 10 * 1024 ** 3 });
    await service().deleteFile(a.key);
    await rejectsWith(service().getFileMetadata(a.key), 'not_found', 404);
    await rejectsWith(service().deleteFile(a.key), 'not_found', 404);
    assert.equal((await service().userUsage('dave')).used_bytes, 12);
  });

  test('errors: a wrong service token, a user id missing, a server that is not there', async () => {
    const wrong = createServiceClient({ baseUrl: server.url, serviceToken: 'not-the-service-token-at-all' });
    const error = await rejectsWith(wrong.listUserFiles('dave'), 'invalid_token', 401);
    assert.match(error.message, /invalid_token/);
    await rejectsWith(service().listUserFiles(''), 'invalid_user_id', 400);
    const gone = createServiceClient({ baseUrl: 'http://127.0.0.1:9', serviceToken: server.serviceToken });
    await rejectsWith(gone.healthCheck(), 'network_error', 0);
    await rejectsWith(gone.getJwks(), 'network_error', 0);
  });
});

describe('SDK user session', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer({ env: { QUOTA_DEFAULT_BYTES: String(8 * MiB) } });
    token = await server.token('alice');
  });
  after(() => server.stop());
  const session = () => createUserSession({ baseUrl: server.url, token });
  // The tests share alice's 8 MiB: what one that failed part-way left is removed, so the next one
  // starts from an empty account instead of failing on its quota or its listing.
  afterEach(async () => {
    for (const file of (await session().listMyFiles()).files) await session().deleteFile(file.key);
  });

  test('upload of a path: SHA-256 declared, progress reported, the record returned', async () => {
    const data = randomBytes(3 * MiB + 17);
    const file = path.join(tempDir(), 'holiday.jpg');
    writeFileSync(file, data);
    const progress: number[] = [];
    const record = await session().upload(file, { folder: 'main/pictures', filetype: 'image/jpeg', chunkSize: MiB, onProgress: (sent, total) => {
      assert.equal(total, data.length);
      progress.push(sent);
    } });
    assert.deepEqual(
      { user_id: record.user_id, folder: record.folder, filename: record.filename, content_type: record.content_type, size: record.size, sha256: record.sha256 },
      { user_id: 'alice', folder: 'main/pictures', filename: 'holiday.jpg', content_type: 'image/jpeg', size: data.length, sha256: sha256(data) },
    );
    assert.equal(progress.at(-1), data.length);
    assert.ok(progress.length >= 4, `progress reported ${progress.length} times`);
    assert.deepEqual(await session().getFileMetadata(record.key), record);
    await session().deleteFile(record.key);
  });

  test('a file that grows while it is hashed and sent is uploaded as it was when the upload began', async () => {
    const data = randomBytes(6 * MiB);
    const file = path.join(tempDir(), 'growing.log');
    writeFileSync(file, data);
    // Appended all along, from before the hash starts to after the last byte is sent (the file
    // outgrows the user's 8 MiB quota meanwhile: only the first 6 MiB may be sent).
    const growing = setInterval(() => appendFileSync(file, randomBytes(16 * 1024)), 1);
    let record;
    try {
      record = await session().upload(file, { chunkSize: MiB });
    } finally {
      clearInterval(growing);
    }
    try {
      // The stat may come a few appends after the start on a loaded machine: whatever size it saw,
      // the record is exactly that prefix of the file, and the file went on growing past it.
      const final = readFileSync(file);
      assert.ok(record.size >= data.length && record.size < final.length, `recorded ${record.size} of a file now ${final.length} bytes`);
      assert.equal(record.sha256, sha256(final.subarray(0, record.size)));
    } finally {
      await session().deleteFile(record.key);
    }
  });

  // The timeout only turns a hang (each PATCH waiting for the server's idle timeout) into a failure.
  test('a file cut short while it is uploaded fails at once, naming the file, instead of waiting on the server', { timeout: 120_000 }, async () => {
    const data = randomBytes(6 * MiB);
    const file = path.join(tempDir(), 'shrinking.bin');
    writeFileSync(file, data);
    let cut = false;
    let uploadUrl = '';
    const upload = session().upload(file, {
      chunkSize: MiB,
      onUploadUrl: (url) => (uploadUrl = url),
      onProgress: (sent) => {
        if (!cut && sent >= MiB) {
          cut = true;
          truncateSync(file, 2 * MiB);
        }
      },
    });
    try {
      await assert.rejects(upload, (error: Error) => /shrinking\.bin shrank to 2097152 of its 6291456 bytes/.test(error.message));
    } finally {
      // The upload stays on the server, as any that failed; terminated here so the quota is free again.
      if (uploadUrl) assert.equal((await fetch(uploadUrl, { method: 'DELETE', headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' } })).status, 204);
    }
  });

  test('upload of a Buffer, a Node stream and a web stream', async () => {
    const bytes = randomBytes(70_000);
    const fromBuffer = await session().upload(bytes, { filename: 'buffer.bin' });
    assert.equal(fromBuffer.sha256, sha256(bytes));
    const fromStream = await session().upload(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { filename: 'stream.bin' });
    assert.equal(fromStream.sha256, sha256(bytes));
    assert.equal(fromStream.size, bytes.length);
    const fromWeb = await session().upload(new Blob([bytes]).stream(), { filename: 'web.bin', folder: 'w' });
    assert.equal(fromWeb.sha256, sha256(bytes));
    const listed = await session().listMyFiles();
    assert.deepEqual(listed.files.map((f) => f.filename).sort(), ['buffer.bin', 'stream.bin', 'web.bin']);
    assert.deepEqual((await session().listMyFiles({ folder: 'w' })).files.map((f) => f.key), [fromWeb.key]);
    for (const f of listed.files) await session().deleteFile(f.key);
    assert.deepEqual(await session().usage(), { used_bytes: 0, reserved_bytes: 0, quota_bytes: 8 * MiB });
  });

  test('the browser hash streams a Blob through hash-wasm to the same SHA-256', async () => {
    const bytes = randomBytes(3 * MiB + 5);
    assert.equal(await sha256OfBlob(new Blob([bytes.subarray(0, MiB), bytes.subarray(MiB)])), sha256(bytes));
    assert.equal(await sha256OfBlob(new Blob([])), sha256(Buffer.alloc(0)));
  });

  test('an aborted upload stays on the server and resumes from its offset', async () => {
    const data = randomBytes(4 * MiB);
    const file = path.join(tempDir(), 'resume.bin');
    writeFileSync(file, data);
    let uploadUrl: string | undefined;
    const controller = new AbortController();
    const first = session().upload(file, {
      chunkSize: MiB,
      onUploadUrl: (url) => (uploadUrl = url),
      onProgress: (sent) => {
        if (sent >= 2 * MiB) controller.abort();
      },
      signal: controller.signal,
    });
    await assert.rejects(first, (e: Error) => e.name === 'AbortError');
    assert.ok(uploadUrl);
    let status = await session().uploadStatus(uploadUrl);
    for (let i = 0; i < 50 && status && status.offset < MiB; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await session().uploadStatus(uploadUrl);
    }
    assert.ok(status && status.offset >= MiB && status.offset < data.length, `offset ${status?.offset}`);
    assert.equal(status.length, data.length);

    let firstSent: number | undefined;
    const record = await session().upload(file, { chunkSize: MiB, uploadUrl, onProgress: (sent) => (firstSent ??= sent) });
    assert.ok(firstSent! >= status.offset, `resumed at ${firstSent}, server had ${status.offset}`);
    assert.equal(record.sha256, sha256(data));
    assert.deepEqual(await session().uploadStatus(uploadUrl), { offset: data.length, length: data.length }, 'a finished upload URL answers complete');
    await session().deleteFile(record.key);
    assert.equal(await session().uploadStatus(uploadUrl), null, 'and is gone with its file');
  });

  test('signedUrl gives a link that serves the bytes; batchDownload a ZIP of several files', async () => {
    const one = await session().upload(Buffer.from('one\n'), { filename: 'one.txt', folder: 'zip' });
    const two = await session().upload(Buffer.from('two two\n'), { filename: 'two.txt', folder: 'zip' });
    const link = await session().signedUrl(one.key, { ttl: 60, disposition: 'inline' });
    const expires = (Date.parse(link.expires_at) - Date.now()) / 1000;
    assert.ok(expires > 55 && expires <= 60, `expires in ${expires} s`);
    const res = await fetch(link.url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'one\n');
    assert.match(res.headers.get('content-disposition')!, /^inline;/);
    await rejectsWith(session().signedUrl(one.key, { ttl: 0 }), 'invalid_parameter', 400);

    const batch = await session().batchDownload([one.key, two.key], 'my files');
    const zip = await fetch(batch.url);
    assert.equal(zip.status, 200);
    assert.match(zip.headers.get('content-disposition')!, /my files\.zip/);
    const zipFile = path.join(tempDir(), 'out.zip');
    writeFileSync(zipFile, Buffer.from(await zip.arrayBuffer()));
    const entries = await readWithYauzl(zipFile);
    assert.deepEqual(entries.map((e) => [e.name, e.data.toString()]).sort(), [['zip/one.txt', 'one\n'], ['zip/two.txt', 'two two\n']]);
    await rejectsWith(session().batchDownload([]), 'invalid_parameter', 400);
    await rejectsWith(session().batchDownload(['users/alice/2020/01/01/00000000000000000000000000000000.txt']), 'not_found', 404);
    await session().deleteFile(one.key);
    await session().deleteFile(two.key);
  });

  test('quota_exceeded when the room left is too small; upload_too_large past the largest upload', async () => {
    const held = await session().upload(randomBytes(5 * MiB), { filename: 'held.bin' });
    const error = await rejectsWith(session().upload(randomBytes(4 * MiB), { filename: 'more.bin' }), 'quota_exceeded', 413);
    assert.ok(isStreamLineError(error, 'quota_exceeded'));
    assert.equal((await session().usage()).reserved_bytes, 0);
    await session().deleteFile(held.key);
    await rejectsWith(session().upload(randomBytes(8 * MiB + 1), { filename: 'big.bin' }), 'upload_too_large', 413);
  });

  test('checksum_mismatch: bytes that differ from the declared SHA-256 are refused and discarded', async () => {
    const file = path.join(tempDir(), 'changing.bin');
    writeFileSync(file, randomBytes(50_000));
    // The hash is taken before the upload is created; the file changes before its bytes are sent.
    await rejectsWith(session().upload(file, { retryDelays: [], onUploadUrl: () => writeFileSync(file, randomBytes(50_000)) }), 'checksum_mismatch', 460);
    assert.deepEqual(await session().listMyFiles(), { files: [], next_cursor: null });
    assert.equal((await session().usage()).reserved_bytes, 0);
  });

  test('not_found for another user\'s file, token_expired and invalid_token for bad sessions', async () => {
    const mine = await session().upload(Buffer.from('private'), { filename: 'p.txt' });
    const bob = createUserSession({ baseUrl: server.url, token: await server.token('bob') });
    await rejectsWith(bob.getFileMetadata(mine.key), 'not_found', 404);
    await rejectsWith(bob.deleteFile(mine.key), 'not_found', 404);
    await rejectsWith(bob.signedUrl(mine.key), 'not_found', 404);
    await rejectsWith(bob.batchDownload([mine.key]), 'not_found', 404);

    const expired = createUserSession({ baseUrl: server.url, token: await server.token('alice', -60) });
    await rejectsWith(expired.listMyFiles(), 'token_expired', 401);
    await rejectsWith(expired.upload(Buffer.from('x'), { retryDelays: [] }), 'token_expired', 401);
    const forged = createUserSession({ baseUrl: server.url, token: 'not.a.jwt' });
    await rejectsWith(forged.usage(), 'invalid_token', 401);
    const anonymous = createUserSession({ baseUrl: server.url });
    await rejectsWith(anonymous.usage(), 'unauthenticated', 401);
    await session().deleteFile(mine.key);
  });
});
