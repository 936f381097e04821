// Bad tus requests answered cleanly (server/routes/uploads.ts): broken lengths and offsets, bodies
// past the end, protocol mistakes, upload URLs that name no upload. Every refusal is problem+json
// with a stable code, and afterwards the server still serves, holds no orphaned bytes and reserves
// exactly what its live uploads need.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { badInputServer, type Headers } from '../../helpers/bad-input.ts';
import { expectProblem, expectRawProblem, rawRequest } from '../../helpers/problem.ts';
import { recordRows } from '../../helpers/records.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../../helpers/tus.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('bad input: tus requests', () => {
  const fixture = badInputServer();

  test('Upload-Length that is negative, not a number or beyond 2^53: 400', async () => {
    const { mallory, post, refusedCreation } = fixture;
    const lengths = ['-1', 'abc', '1.5', '1e3', '0x10', '+5', '010', ' ', '99999999999999999999', '9007199254740993'];
    for (const length of lengths) {
      await refusedCreation(await post({ ...mallory, 'Upload-Length': length }), 400, 'invalid_header', `Upload-Length ${JSON.stringify(length)}`);
    }
    await refusedCreation(await post({ ...mallory }), 400, 'invalid_header', 'no length at all');
    await refusedCreation(await post({ ...mallory, 'Upload-Length': '5', 'Upload-Defer-Length': '1' }), 400, 'invalid_header', 'both lengths');
    await refusedCreation(await post({ ...mallory, 'Upload-Defer-Length': '2' }), 400, 'invalid_header', 'Upload-Defer-Length 2');
    // The largest safe integer, far beyond the quota: a size problem, not a syntax problem.
    await refusedCreation(await post({ ...mallory, 'Upload-Length': String(2 ** 53 - 1) }), 413, 'upload_too_large', 'Upload-Length 2^53 - 1');
  });

  test('Upload-Length beyond 2^53 that a double holds exactly: 400, like any length the server cannot represent', async () => {
    const { server, mallory, post, refusedCreation } = fixture;
    // 2^54 and 2^60 survive Number → String unchanged, so @tus/server's own check lets them through.
    for (const length of [String(2 ** 54), String(2 ** 60)]) {
      await refusedCreation(await post({ ...mallory, 'Upload-Length': length }), 400, 'invalid_header', `Upload-Length ${length}`);
    }
    const deferred = await createUpload(server.url, mallory, 'defer', { filename: 'deferred.bin' });
    assert.equal(deferred.status, 201);
    const declare = await patchUpload(deferred.headers.get('location')!, mallory, 0, Buffer.alloc(0), { 'Upload-Length': String(2 ** 54) });
    await expectProblem(declare, 400, 'invalid_header', 'deferred Upload-Length 2^54', 'PATCH');
  });

  test('an Upload-Length that is there but not allowed: 400 whose detail does not claim it is missing', async () => {
    const { mallory, newUpload } = fixture;
    const url = await newUpload(10, { filename: 'known.bin' });
    const refused = await patchUpload(url, mallory, 0, Buffer.alloc(5), { 'Upload-Length': '10' });
    const problem = await expectProblem(refused, 400, 'invalid_header', 'Upload-Length on an upload whose length is known', 'PATCH');
    assert.doesNotMatch(problem!.detail ?? '', /required/);
    assert.match(problem!.detail ?? '', /never when the length is known/);
    assert.equal((await headUpload(url, mallory)).headers.get('upload-offset'), '0');
  });

  test('Upload-Offset that is not a non-negative integer: 400; one that does not match: 409', async () => {
    const { mallory, newUpload } = fixture;
    const url = await newUpload(100, { filename: 'offsets.bin' });
    const data = randomBytes(100);
    for (const offset of ['abc', '-1', '1.0', '', '0x0', '1e1']) {
      const res = await patchUpload(url, mallory, 0, data.subarray(0, 10), { 'Upload-Offset': offset });
      await expectProblem(res, 400, 'invalid_header', `Upload-Offset ${JSON.stringify(offset)}`, 'PATCH');
    }
    const missing = await fetch(url, { method: 'PATCH', headers: { ...TUS, ...mallory, 'Content-Type': 'application/offset+octet-stream' }, body: new Uint8Array(data.subarray(0, 10)) });
    await expectProblem(missing, 400, 'invalid_header', 'no Upload-Offset', 'PATCH');
    assert.equal((await patchUpload(url, mallory, 0, data.subarray(0, 10))).status, 204);
    for (const offset of [0, 5, 11, 50]) {
      const res = await patchUpload(url, mallory, offset, data.subarray(offset, offset + 10));
      await expectProblem(res, 409, 'offset_mismatch', `offset ${offset}`, 'PATCH');
    }
    const head = await headUpload(url, mallory);
    assert.equal(head.headers.get('upload-offset'), '10');
    const done = await patchUpload(url, mallory, 10, data.subarray(10));
    assert.equal(done.status, 200);
    assert.equal((await done.json()).sha256, sha256(data));
  });

  test('a body longer than Upload-Length: 413, and the upload resumes at the right offset with the right bytes', async () => {
    const { server, mallory, post, refusedCreation, newUpload } = fixture;
    const data = randomBytes(1000);
    // With Content-Length: refused before a byte is written.
    const url = await newUpload(1000, { filename: 'long.bin' });
    assert.equal((await patchUpload(url, mallory, 0, data.subarray(0, 300))).status, 204);
    const tooLong = await patchUpload(url, mallory, 300, Buffer.concat([data.subarray(300), randomBytes(50)]));
    await expectProblem(tooLong, 413, 'upload_too_large', 'Content-Length past the end', 'PATCH');
    const head = await headUpload(url, mallory);
    assert.equal(head.headers.get('upload-offset'), '300');
    const done = await patchUpload(url, mallory, 300, data.subarray(300));
    assert.equal(done.status, 200);
    const record = await done.json();
    assert.equal(record.sha256, sha256(data));
    assert.ok((await server.readStored(record.key))?.equals(data));

    // Chunked (no Content-Length): the excess is noticed mid-stream.
    const url2 = await newUpload(1000, { filename: 'long-chunked.bin' });
    const chunks = [data.subarray(0, 600), Buffer.concat([data.subarray(600), randomBytes(500)])];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(new Uint8Array(next));
        else controller.close();
      },
    });
    const chunked = await fetch(url2, {
      method: 'PATCH',
      headers: { ...TUS, ...mallory, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    await expectProblem(chunked, 413, 'upload_too_large', 'chunked past the end', 'PATCH');
    const head2 = await headUpload(url2, mallory);
    assert.equal(head2.status, 200);
    const offset = Number(head2.headers.get('upload-offset'));
    assert.ok(offset >= 0 && offset < 1000, `offset ${offset} is inside the upload and the upload is not finished`);
    const id2 = url2.split('/').pop()!;
    assert.ok((await server.uploadBytes(id2))?.equals(data.subarray(0, offset)), 'the stored prefix is the client’s bytes');
    const done2 = await patchUpload(url2, mallory, offset, data.subarray(offset));
    assert.equal(done2.status, 200);
    const record2 = await done2.json();
    assert.equal(record2.size, 1000);
    assert.equal(record2.sha256, sha256(data));
    assert.ok((await server.readStored(record2.key))?.equals(data));

    // Creation-with-upload past the end: refused, and nothing stays behind.
    const res = await post({ ...mallory, 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream' }, randomBytes(20));
    await refusedCreation(res, 413, 'upload_too_large', 'creation body past the end');
  });

  test('PATCH without or with a wrong Content-Type: 415; missing or wrong Tus-Resumable: 412', async () => {
    const { server, mallory, newUpload } = fixture;
    const url = await newUpload(10, { filename: 'ct.bin' });
    const noType = await fetch(url, { method: 'PATCH', headers: { ...TUS, ...mallory, 'Upload-Offset': '0' }, body: new Uint8Array(5) });
    // fetch labels a Uint8Array body with no type; a Blob without type neither: the header is absent.
    await expectProblem(noType, 415, 'unsupported_media_type', 'no Content-Type', 'PATCH');
    for (const type of ['text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x']) {
      const res = await patchUpload(url, mallory, 0, Buffer.alloc(5), { 'Content-Type': type });
      await expectProblem(res, 415, 'unsupported_media_type', `Content-Type ${type}`, 'PATCH');
    }
    for (const [method, target] of [['POST', `${server.url}/v1/uploads`], ['HEAD', url], ['PATCH', url], ['DELETE', url]] as const) {
      const headers: Headers = { ...mallory, 'Upload-Length': '1', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
      const missing = await fetch(target, { method, headers });
      await expectProblem(missing, 412, 'precondition_failed', 'no Tus-Resumable', method);
      const wrong = await fetch(target, { method, headers: { ...headers, 'Tus-Resumable': '0.2.2' } });
      await expectProblem(wrong, 412, 'precondition_failed', 'Tus-Resumable 0.2.2', method);
      assert.equal(wrong.headers.get('tus-version'), '1.0.0', `${method}: a 412 names the versions the server speaks (tus 1.0 §2.4)`);
    }
    assert.equal((await headUpload(url, mallory)).headers.get('upload-offset'), '0');
  });

  test('GET on an upload URL: 405; an invalid upload id: 404', async () => {
    const { dataDir, server, mallory, service, newUpload } = fixture;
    const url = await newUpload(10, { filename: 'get.bin' });
    for (const headers of [{}, mallory, service]) {
      const res = await fetch(url, { headers: { ...TUS, ...headers } });
      await expectProblem(res, 405, 'method_not_allowed', 'GET');
      assert.ok(res.headers.get('allow'));
    }
    const id = url.split('/').pop()!;
    const ids = ['xyz', id.toUpperCase(), `${id}0`, id.slice(1), `${id}.json`, '0'.repeat(32), '%2E%2E%2Fsecrets.json', '..%2F..%2Fdata.db', `${id}%00`];
    for (const bad of ids) {
      for (const auth of [mallory, service]) {
        const target = `${server.url}/v1/uploads/${bad}`;
        await expectProblem(await fetch(target, { method: 'HEAD', headers: { ...TUS, ...auth } }), 404, 'not_found', bad, 'HEAD');
        const patch = await fetch(target, { method: 'PATCH', headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: new Uint8Array(1) });
        await expectProblem(patch, 404, 'not_found', bad, 'PATCH');
        await expectProblem(await fetch(target, { method: 'DELETE', headers: { ...TUS, ...auth } }), 404, 'not_found', bad, 'DELETE');
      }
    }
    // Dot segments are resolved before routing (RFC 3986 §5.2.4), so they can only ever reach
    // another upload URL, whose owner is then checked, or something that is not an upload.
    const victim = await createUpload(server.url, service, 10, { user_id: 'victim' });
    const victimId = victim.headers.get('location')!.split('/').pop()!;
    const raws = [`/v1/uploads/${id}/../${victimId}`, `/v1/uploads/%2e%2e/uploads/${victimId}`, `/v1/uploads/${id}/../${id}.json`, `/v1/uploads/${id}/extra`, `/v1/uploads/${id}/../../../secrets.json`];
    for (const raw of raws) {
      expectRawProblem(await rawRequest(server.url, 'DELETE', raw, { ...TUS, ...mallory }), 404, 'not_found', raw);
    }
    assert.equal((await headUpload(victim.headers.get('location')!, service)).status, 200);
    // The upload and its tus info are untouched by all of it.
    assert.equal((await headUpload(url, mallory)).status, 200);
    assert.ok(await server.hasUpload(id));
    if (server.storage === 'file') assert.deepEqual(readdirSync(path.join(dataDir, 'uploads')).filter((f) => f.startsWith(id)), [id]);
  });

  // Runs last (tests in a describe run in order): the state every refusal above left behind.
  test('afterwards: the server serves, no orphaned upload bytes, reservations match live uploads', async () => {
    const { server, mallory, service } = fixture;
    const storage = server.services.storage;
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, 'ok');

    const rows = await recordRows<{ id: string; user_id: string; length: number | null; reserved_bytes: number }>(server, 'SELECT id, user_id, length, reserved_bytes FROM uploads');
    const expected = rows.map((r) => r.id).sort();
    assert.deepEqual((await storage.listUploadIds()).sort(), expected, 'storage holds exactly the live uploads');
    if (storage.kind === 'file') {
      // On local disk tus's info is a row beside the records (on S3 it is the `.info` object listed above).
      const tusInfo = (await recordRows<{ id: string }>(server, 'SELECT id FROM tus_uploads ORDER BY id')).map((r) => r.id);
      assert.deepEqual(tusInfo, expected, "tus's info is kept for exactly the live uploads");
    }
    assert.ok(rows.length > 0, 'some uploads were left unfinished on purpose');

    // A known length is reserved whole; a deferred one holds exactly the bytes it has stored.
    const reservation = new Map<string, number>();
    for (const r of rows) reservation.set(r.id, r.length ?? (await storage.tusStore.getUpload(r.id)).offset);
    for (const userId of new Set(rows.map((r) => r.user_id))) {
      const live = rows.filter((r) => r.user_id === userId);
      for (const r of live) assert.equal(r.reserved_bytes, reservation.get(r.id), `upload ${r.id} reserves its declared length or its stored bytes`);
      const usage = await (await fetch(`${server.url}/v1/usage?user_id=${userId}`, { headers: service })).json();
      assert.equal(usage.reserved_bytes, live.reduce((sum, r) => sum + reservation.get(r.id)!, 0), `${userId}: reserved bytes`);
    }
    const files = await recordRows<{ key: string; user_id: string; size: number }>(server, "SELECT key, user_id, size FROM files WHERE state = 'ready'");
    for (const f of files) assert.equal((await storage.statFile(f.key))?.size, f.size, f.key);
    const usage = await (await fetch(`${server.url}/v1/usage`, { headers: mallory })).json();
    assert.equal(usage.used_bytes, files.filter((f) => f.user_id === 'mallory').reduce((sum, f) => sum + f.size, 0));
    const stored: string[] = [];
    for await (const f of storage.listFiles()) stored.push(f.key);
    assert.deepEqual(stored.sort(), files.map((f) => f.key).sort(), 'every stored file has a record and every record its bytes');
  });
});
