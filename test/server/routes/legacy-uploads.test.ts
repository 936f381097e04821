// The original Stream-Line API's upload calls (server/routes/legacy-uploads.ts) on top of tus:
// what they answer to bad input, parts out of order or sent twice, missing bytes and checksums;
// and that nothing is left behind (no record, no reservation) when they refuse.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { recordCount, recordQuery } from '../../helpers/records.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { headUpload, patchUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';
import { Receiver, uploadIdOf } from '../../helpers/webhook-receiver.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const b64 = (data: Buffer) => data.toString('base64');
const QUOTA = 1024 * 1024;
const MAX_BODY = 64 * 1024;

describe('original API: init, part, complete', () => {
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let service: Record<string, string>;
  before(async () => {
    server = await startTestServer({ env: { QUOTA_DEFAULT_BYTES: String(QUOTA), LEGACY_API_MAX_BODY_BYTES: String(MAX_BODY) } });
    alice = { Authorization: `Bearer ${await server.token('alice')}` };
    bob = { Authorization: `Bearer ${await server.token('bob')}` };
    service = { 'X-Service-Token': server.serviceToken };
  });
  after(() => server.stop());

  const post = (call: string, headers: Record<string, string>, body: unknown) =>
    fetch(`${server.url}/v1/files/${call}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const init = async (headers: Record<string, string>, size: number, extra: Record<string, unknown> = {}) => {
    const res = await post('init', headers, { mode: 'chunked', files: [{ name: 'a.bin', size }], ...extra });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { uploadId: string; upload_url: string; offset: number; size: number; fileKey?: string };
  };
  const usage = async (headers: Record<string, string>) => (await (await fetch(`${server.url}/v1/usage`, { headers })).json()) as { used_bytes: number; reserved_bytes: number };
  const uploadsInDb = () => recordCount(server, 'SELECT count(*) AS n FROM uploads');

  test('init creates a tus upload (same quota, metadata, URL) and answers its id', async () => {
    const started = await init(alice, 100, { folder: 'main/pictures', files: [{ name: 'p.jpg', size: 100, mime: 'image/jpeg' }] });
    assert.match(started.uploadId, /^[0-9a-f]{32}$/);
    assert.equal(started.upload_url, `${server.url}/v1/uploads/${started.uploadId}`);
    assert.deepEqual([started.offset, started.size], [0, 100]);
    const row = (await server.services.repo.getUpload(started.uploadId))!;
    assert.deepEqual([row.user_id, row.filename, row.folder, row.content_type, row.reserved_bytes], ['alice', 'p.jpg', 'main/pictures', 'image/jpeg', 100]);
    // The same upload over tus: a client can move to resumable uploads at any point.
    const head = await headUpload(started.upload_url, alice);
    assert.deepEqual([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length')], [200, '0', '100']);
    await fetch(started.upload_url, { method: 'DELETE', headers: { ...alice, 'Tus-Resumable': '1.0.0' } });
  });

  test('bad init bodies: 400 with a code, nothing reserved', async () => {
    const before = await uploadsInDb();
    const cases: Array<[string, string | unknown, number, string]> = [
      ['not JSON', '{"files": [', 400, 'bad_request'],
      ['files missing', { mode: 'single' }, 400, 'invalid_parameter'],
      ['two files', { files: [{ name: 'a', size: 1 }, { name: 'b', size: 1 }] }, 400, 'invalid_parameter'],
      ['no name', { files: [{ size: 1 }] }, 400, 'invalid_parameter'],
      ['negative size', { files: [{ name: 'a', size: -1 }] }, 400, 'invalid_parameter'],
      ['fractional size', { files: [{ name: 'a', size: 1.5 }] }, 400, 'invalid_parameter'],
      ['size as text', { files: [{ name: 'a', size: '10' }] }, 400, 'invalid_parameter'],
      ['mode batch', { mode: 'batch', files: [{ name: 'a', size: 1 }] }, 400, 'invalid_parameter'],
      ['bad sha256', { files: [{ name: 'a', size: 1, sha256: 'abc' }] }, 400, 'invalid_parameter'],
      ['folder with ..', { files: [{ name: 'a', size: 1 }], folder: 'a/../b' }, 400, 'invalid_metadata'],
      ['mime not a media type', { files: [{ name: 'a', size: 1, mime: 'not a type' }] }, 400, 'invalid_metadata'],
      ['someone else as user_id', { files: [{ name: 'a', size: 1 }], meta: { user_id: 'bob' } }, 403, 'forbidden'],
      ['over MAX_UPLOAD_BYTES', { files: [{ name: 'a', size: QUOTA + 1 }] }, 413, 'upload_too_large'],
    ];
    for (const [what, body, status, code] of cases) await expectProblem(await post('init', alice, body), status, code, what);
    // Over what the quota has left once another upload holds its reservation.
    const holding = await init(alice, QUOTA / 2 + 1);
    await expectProblem(await post('init', alice, { files: [{ name: 'a', size: QUOTA / 2 }] }), 413, 'quota_exceeded', 'over the quota');
    await fetch(holding.upload_url, { method: 'DELETE', headers: { ...alice, 'Tus-Resumable': '1.0.0' } });
    await expectProblem(await post('init', service, { files: [{ name: 'a', size: 1 }] }), 400, 'invalid_user_id', 'service without user_id');
    await expectProblem(await post('init', {}, { files: [{ name: 'a', size: 1 }] }), 401, 'unauthenticated', 'no credentials');
    await expectProblem(await post('init', alice, { files: [{ name: 'a'.repeat(MAX_BODY), size: 1 }] }), 413, 'body_too_large', 'body over the cap');
    assert.equal(await uploadsInDb(), before);
    assert.deepEqual(await usage(alice), { used_bytes: 0, reserved_bytes: 0, quota_bytes: QUOTA });
  });

  test('parts in order (numbered from 0 or 1), the last one sent again acknowledged, others refused; offset unchanged', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    const { uploadId } = await init(alice, data.length);
    const part = (partNumber: number, bytes: Buffer, headers = alice) => post('part', headers, { uploadId, partNumber, chunkBase64: b64(bytes) });
    const offset = async () => Number((await headUpload(`${server.url}/v1/uploads/${uploadId}`, alice)).headers.get('upload-offset'));

    // A part that arrives before the first (parts sent in parallel) is not written at the start.
    await expectProblem(await part(2, data.subarray(8, 16)), 409, 'part_out_of_order', 'part 2 before part 1');
    await expectProblem(await part(7, data.subarray(8, 16)), 409, 'part_out_of_order', 'part 7 first');
    assert.equal(await offset(), 0);
    const first = await part(1, data.subarray(0, 8));
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { uploadId, partNumber: 1, offset: 8, size: 20, complete: false });
    const again = await part(1, data.subarray(0, 8));
    assert.deepEqual((await again.json()).offset, 8, 'a part sent twice is stored once');
    await expectProblem(await part(3, data.subarray(8, 16)), 409, 'part_out_of_order', 'a gap');
    await expectProblem(await part(0, data.subarray(0, 8)), 409, 'part_out_of_order', 'an earlier part');
    await expectProblem(await part(1, data.subarray(0, 5)), 409, 'part_out_of_order', 'part 1 again with other bytes');
    await expectProblem(await part(2, data.subarray(8, 16), bob), 404, 'not_found', "bob on alice's upload");
    await expectProblem(await post('part', alice, { uploadId, partNumber: 2, chunkBase64: 'not base64!' }), 400, 'invalid_parameter', 'bad base64');
    await expectProblem(await post('part', alice, { uploadId, partNumber: 2 }), 400, 'invalid_parameter', 'no bytes');
    await expectProblem(await post('part', alice, { uploadId: '../etc', partNumber: 2, chunkBase64: 'AA==' }), 400, 'invalid_parameter', 'bad id');
    await expectProblem(await post('part', alice, { uploadId: 'f'.repeat(32), partNumber: 2, chunkBase64: 'AA==' }), 404, 'not_found', 'unknown id');
    await expectProblem(await post('part', alice, { uploadId, partNumber: -1, chunkBase64: 'AA==' }), 400, 'invalid_parameter', 'negative part');
    await expectProblem(await part(2, Buffer.alloc(13)), 413, 'upload_too_large', 'past the declared size');
    assert.equal(await offset(), 8);

    // Complete before the last bytes: 409, the upload stays as it is.
    await expectProblem(await post('complete', alice, { uploadId }), 409, 'upload_incomplete');
    assert.equal(await offset(), 8);

    assert.equal((await part(2, data.subarray(8, 16))).status, 200);
    const last = await part(3, data.subarray(16));
    const finished = await last.json();
    assert.equal(finished.complete, true);
    assert.match(finished.fileKey, /^users\/alice\//);
    // The last part sent again after the file exists: acknowledged, nothing changes.
    assert.deepEqual(await (await part(3, data.subarray(16))).json(), { uploadId, partNumber: 3, offset: 20, size: 20, complete: true, fileKey: finished.fileKey });

    const done = await post('complete', alice, { uploadId, meta: { filename: 'a.bin' } });
    assert.equal(done.status, 200);
    const record = await done.json();
    assert.equal(record.fileKey, finished.fileKey);
    assert.equal(record.sha256, sha256(data));
    assert.deepEqual(await server.readStored(record.key), data);
    // complete is safe to repeat.
    assert.deepEqual(await (await post('complete', alice, { uploadId })).json(), record);
    await expectProblem(await post('complete', bob, { uploadId }), 404, 'not_found', "bob completing alice's upload");
    await fetch(`${server.url}/v1/files/${record.key}`, { method: 'DELETE', headers: alice });
  });

  test('a part whose first attempt stopped midway is completed from where it stopped when sent again', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    const { uploadId, upload_url } = await init(alice, data.length);
    const part = (partNumber: number, bytes: Buffer) => post('part', alice, { uploadId, partNumber, chunkBase64: b64(bytes) });
    assert.equal((await part(0, data.subarray(0, 8))).status, 200);
    // Part 1 was begun (its start remembered) and only 3 of its 8 bytes were stored.
    await recordQuery(server, 'UPDATE legacy_parts SET part_number = 1, start = 8, length = 8 WHERE upload_id = ?', uploadId);
    assert.equal((await patchUpload(upload_url, alice, 8, data.subarray(8, 11))).status, 204);
    await expectProblem(await part(2, data.subarray(16)), 409, 'part_out_of_order', 'the next part before the broken one');
    const resent = await part(1, data.subarray(8, 16));
    assert.equal((await resent.json()).offset, 16);
    const finished = await (await part(2, data.subarray(16))).json();
    assert.deepEqual(await server.readStored(finished.fileKey), data);
    // Bytes written over tus after a part: the part numbers no longer place anything.
    const mixed = await init(alice, 10);
    assert.equal((await post('part', alice, { uploadId: mixed.uploadId, partNumber: 0, chunkBase64: b64(Buffer.from('abc')) })).status, 200);
    assert.equal((await patchUpload(mixed.upload_url, alice, 3, Buffer.from('def'))).status, 204);
    await expectProblem(await post('part', alice, { uploadId: mixed.uploadId, partNumber: 1, chunkBase64: b64(Buffer.from('ghij')) }), 409, 'part_out_of_order', 'after tus');
    await fetch(mixed.upload_url, { method: 'DELETE', headers: { ...alice, 'Tus-Resumable': '1.0.0' } });
    await fetch(`${server.url}/v1/files/${finished.fileKey}`, { method: 'DELETE', headers: alice });
  });

  test('complete: parts[] carries the whole file; bytes already sent are not written again', async () => {
    const data = Buffer.from('hello, original client');
    const { uploadId } = await init(alice, data.length);
    assert.equal((await post('part', alice, { uploadId, partNumber: 0, chunkBase64: b64(data.subarray(0, 10)) })).status, 200);
    const done = await post('complete', alice, { uploadId, parts: [{ data: b64(data.subarray(0, 6)) }, { data: b64(data.subarray(6)) }] });
    assert.equal(done.status, 200);
    const record = await done.json();
    assert.deepEqual(await server.readStored(record.key), data);
    await fetch(`${server.url}/v1/files/${record.key}`, { method: 'DELETE', headers: alice });
  });

  test('complete naming another filename or folder than init is refused; the upload is kept', async () => {
    const { uploadId } = await init(alice, 3, { folder: 'docs' });
    await expectProblem(await post('complete', alice, { uploadId, parts: [{ data: b64(Buffer.from('abc')) }], meta: { folder: 'pics' } }), 400, 'invalid_parameter', 'folder');
    await expectProblem(await post('complete', alice, { uploadId, meta: { filename: 'b.bin' } }), 400, 'invalid_parameter', 'filename');
    await expectProblem(await post('complete', service, { uploadId, meta: { user_id: 'bob' } }), 404, 'not_found', 'service naming another owner');
    const ok = await post('complete', alice, { uploadId, parts: [{ data: b64(Buffer.from('abc')) }], meta: { folder: '/docs/', filename: 'a.bin' } });
    assert.equal(ok.status, 200);
    const record = await ok.json();
    assert.equal(record.folder, 'docs');
    await fetch(`${server.url}/v1/files/${record.key}`, { method: 'DELETE', headers: alice });
  });

  test('a sha256 that does not match: 460, the file is discarded and its quota freed', async () => {
    const data = Buffer.from('checked bytes');
    // Declared at complete: the file was recorded, then discarded.
    const late = await init(alice, data.length);
    await expectProblem(await post('complete', alice, { uploadId: late.uploadId, parts: [{ data: b64(data) }], sha256: sha256(Buffer.from('other')) }), 460, 'checksum_mismatch', 'at complete');
    // Declared at init: the final write is refused by the upload's own sha256 check.
    const early = await init(alice, data.length, { sha256: sha256(Buffer.from('other')) });
    await expectProblem(await post('part', alice, { uploadId: early.uploadId, partNumber: 0, chunkBase64: b64(data) }), 460, 'checksum_mismatch', 'at init');
    assert.deepEqual(await usage(alice), { used_bytes: 0, reserved_bytes: 0, quota_bytes: QUOTA });
    const files = await (await fetch(`${server.url}/v1/files/all`, { headers: alice })).json();
    assert.deepEqual(files.files, []);
    // A matching sha256 (any case) is accepted.
    const good = await init(alice, data.length, { sha256: sha256(data).toUpperCase() });
    const done = await post('complete', alice, { uploadId: good.uploadId, parts: [{ data: b64(data) }], sha256: sha256(data) });
    assert.equal(done.status, 200);
    await fetch(`${server.url}/v1/files/${(await done.json()).key}`, { method: 'DELETE', headers: alice });
  });

  test('an empty file is finished by init; complete answers its record', async () => {
    const started = await init(service, 0, { meta: { user_id: 'carol' }, files: [{ name: 'empty.txt', size: 0 }] });
    assert.match(started.fileKey!, /^users\/carol\/.*\.txt$/);
    const done = await post('complete', service, { uploadId: started.uploadId, meta: { user_id: 'carol', filename: 'empty.txt' } });
    assert.equal(done.status, 200);
    const record = await done.json();
    assert.deepEqual([record.key, record.size, record.user_id], [started.fileKey, 0, 'carol']);
  });

  test('a body over LEGACY_API_MAX_BODY_BYTES is refused before it is read whole', async () => {
    const { uploadId } = await init(alice, 100_000);
    const huge = JSON.stringify({ uploadId, partNumber: 0, chunkBase64: b64(Buffer.alloc(MAX_BODY)) });
    await expectProblem(await post('part', alice, huge), 413, 'body_too_large');
    // Without Content-Length (a chunked body) the cap holds as well.
    const chunked = await fetch(`${server.url}/v1/files/part`, {
      method: 'POST',
      headers: { ...alice, 'Content-Type': 'application/json' },
      body: new Blob([huge]).stream(),
      duplex: 'half',
    } as RequestInit);
    await expectProblem(chunked, 413, 'body_too_large', 'chunked body');
    assert.equal(Number((await headUpload(`${server.url}/v1/uploads/${uploadId}`, alice)).headers.get('upload-offset')), 0);
    await fetch(`${server.url}/v1/uploads/${uploadId}`, { method: 'DELETE', headers: { ...alice, 'Tus-Resumable': '1.0.0' } });
  });
});

describe('original API: a client that goes away, and the hooks of a tus upload', () => {
  const receiver = new Receiver();
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    await receiver.listen();
    server = await startTestServer({ env: { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}` } });
    auth = { Authorization: `Bearer ${await server.token('wendy')}` };
  });
  after(async () => {
    await server.stop();
    await receiver.close().catch(() => {});
  });
  const post = (call: string, body: unknown) =>
    fetch(`${server.url}/v1/files/${call}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  test('a part whose body is cut off writes nothing, and the server keeps serving', async () => {
    const started = await (await post('init', { files: [{ name: 'cut.bin', size: 100 }] })).json();
    const body = JSON.stringify({ uploadId: started.uploadId, partNumber: 0, chunkBase64: b64(Buffer.alloc(100)) });
    const url = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname, () => {
        socket.write(`POST /v1/files/part HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${auth.Authorization}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        socket.write(body.slice(0, 60), () => setTimeout(() => socket.destroy(), 50));
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    const offset = async () => (await headUpload(started.upload_url, auth)).headers.get('upload-offset');
    await until('the cut request is over', async () => (await offset()) === '0');
    const part = await post('part', { uploadId: started.uploadId, partNumber: 0, chunkBase64: b64(Buffer.alloc(100, 1)) });
    assert.equal(part.status, 200);
    assert.equal((await part.json()).complete, true);
  });

  test('init, part and complete send the same webhooks as a tus upload', async () => {
    const data = Buffer.from('hooked through the original API');
    const started = await (await post('init', { files: [{ name: 'hooked.txt', size: data.length, mime: 'text/plain' }], folder: 'hooks' })).json();
    assert.equal((await post('part', { uploadId: started.uploadId, partNumber: 0, chunkBase64: b64(data) })).status, 200);
    const record = await (await post('complete', { uploadId: started.uploadId, meta: { filename: 'hooked.txt' } })).json();
    assert.equal(uploadIdOf(record.key), started.uploadId);
    await until('two events', () => receiver.forUpload(started.uploadId).length >= 2);
    const events = receiver.forUpload(started.uploadId);
    assert.deepEqual(events.map((e) => e.type), ['upload.created', 'upload.finished']);
    assert.deepEqual(events[0]!.data, { upload_id: started.uploadId, user_id: 'wendy', filename: 'hooked.txt', folder: 'hooks', content_type: 'text/plain', size: data.length });
    assert.deepEqual([events[1]!.data.key, events[1]!.data.sha256], [record.key, sha256(data)]);
  });
});
