// tus concatenation extension on both backends: tus-js-client with parallelUploads: 3 (interrupted
// and resumed), quota and visibility of partial uploads, and the refusals of a final upload.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as tus from 'tus-js-client';
import { expectProblem } from '../../helpers/problem.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, metadataHeader, patchUpload, TUS } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';
import { Receiver, uploadIdOf } from '../../helpers/webhook-receiver.ts';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface ParallelResult {
  fileKey: string;
  url: string;
}

/** tus-js-client with parallelUploads: 3; `stopAt` aborts once that many bytes were sent. */
function parallelUpload(endpoint: string, headers: Record<string, string>, data: Buffer, metadata: Record<string, string>, options: { stopAt?: number; resumeFrom?: string[] } = {}): { done: Promise<ParallelResult | 'aborted'>; upload: tus.Upload } {
  let upload!: tus.Upload;
  const done = new Promise<ParallelResult | 'aborted'>((resolve, reject) => {
    upload = new tus.Upload(data, {
      endpoint: `${endpoint}/v1/uploads`,
      headers,
      metadata,
      parallelUploads: 3,
      chunkSize: 512 * 1024,
      // The aborted first attempt's requests may still be landing when the second starts: a
      // 409 then makes the client ask for the offset again, as tus-js-client does in the field.
      retryDelays: options.resumeFrom ? [0, 200, 500, 1000, 2000] : [],
      storeFingerprintForResuming: false,
      onProgress(sent) {
        if (options.stopAt !== undefined && sent >= options.stopAt) {
          upload.abort().then(() => resolve('aborted'), reject);
        }
      },
      onError: reject,
      onSuccess: ({ lastResponse }) => resolve({ fileKey: lastResponse.getHeader('X-File-Key')!, url: upload.url! }),
    });
    if (options.resumeFrom) upload.resumeFromPreviousUpload({ parallelUploadUrls: options.resumeFrom, size: data.length, metadata, creationTime: '', urlStorageKey: '' } as never);
    upload.start();
  });
  return { done, upload };
}

function partialUrls(upload: tus.Upload): string[] {
  return (upload as unknown as { _parallelUploadUrls: string[] })._parallelUploadUrls;
}

for (const backend of backendsUnderTest()) {
  describe(`tus concatenation (${backend})`, () => {
    let server: TestServer;
    const receiver = new Receiver();
    before(async () => {
      await receiver.listen();
      server = await startTestServer({
        storage: backend,
        env: { QUOTA_DEFAULT_BYTES: String(40 * MiB), WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: 'a-plain-secret-of-at-least-32-characters' },
      });
    });
    after(async () => {
      await server.stop();
      await receiver.close();
    });
    const usage = async (auth: Record<string, string>) => (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
    const list = async (auth: Record<string, string>) => (await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json()).files as Array<{ key: string }>;

    test('OPTIONS advertises concatenation', async () => {
      const res = await fetch(`${server.url}/v1/uploads`, { method: 'OPTIONS' });
      assert.ok(res.headers.get('tus-extension')!.split(',').includes('concatenation'));
    });

    test('tus-js-client parallelUploads: 3, interrupted and resumed: one file, its hooks, no partial left', async () => {
      const auth = { Authorization: `Bearer ${await server.token('parallel')}` };
      const data = randomBytes(10 * MiB + 777);
      const metadata = { filename: 'movie.bin', filetype: 'application/octet-stream', sha256: sha256(data), folder: 'clips' };
      const first = parallelUpload(server.url, auth, data, metadata, { stopAt: 4 * MiB });
      assert.equal(await first.done, 'aborted');
      const urls = partialUrls(first.upload);
      assert.equal(urls.length, 3);
      // While they exist, partial uploads hold quota and are not files.
      assert.equal((await usage(auth)).reserved_bytes, data.length);
      assert.deepEqual(await list(auth), []);

      const second = parallelUpload(server.url, auth, data, metadata, { resumeFrom: urls });
      const result = (await second.done) as ParallelResult;
      assert.deepEqual(partialUrls(second.upload), urls, 'the partial uploads were resumed, not created again');
      const files = await list(auth);
      assert.deepEqual(files.map((f) => f.key), [result.fileKey]);
      const record = await (await fetch(`${server.url}/v1/files/metadata/${result.fileKey}`, { headers: auth })).json();
      assert.equal(record.sha256, sha256(data));
      assert.equal(record.filename, 'movie.bin');
      assert.equal(record.folder, 'clips');
      assert.ok((await server.readStored(result.fileKey))!.equals(data));
      assert.deepEqual(await usage(auth), { used_bytes: data.length, reserved_bytes: 0, quota_bytes: 40 * MiB });
      for (const url of urls) {
        assert.equal((await headUpload(url, auth)).status, 404);
        assert.equal(await server.hasUpload(url.split('/').pop()!), false);
      }
      // Webhooks speak of the final upload only.
      const finalId = uploadIdOf(result.fileKey);
      await until('upload.finished delivered', () => receiver.forUpload(finalId).some((r) => r.type === 'upload.finished'));
      const partialIds = new Set(urls.map((u) => u.split('/').pop()));
      assert.equal(receiver.accepted().filter((r) => partialIds.has(r.data.upload_id as string)).length, 0);
      assert.deepEqual(receiver.forUpload(finalId).map((r) => r.type), ['upload.created', 'upload.finished']);
    });

    test('a complete partial upload is not finished into a file; HEAD says Upload-Concat: partial', async () => {
      const auth = { Authorization: `Bearer ${await server.token('slicer')}` };
      const res = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...auth, 'Upload-Length': '4', 'Upload-Concat': 'partial' } });
      assert.equal(res.status, 201);
      const url = res.headers.get('location')!;
      const patch = await patchUpload(url, auth, 0, Buffer.from('abcd'));
      assert.equal(patch.status, 204);
      assert.equal(patch.headers.get('x-file-key'), null);
      const head = await headUpload(url, auth);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-concat'), 'partial');
      assert.equal(head.headers.get('upload-offset'), '4');
      assert.deepEqual(await list(auth), []);
      assert.equal((await usage(auth)).reserved_bytes, 4);
    });

    test('a final upload refuses someone else\'s, incomplete or non-partial uploads; a wrong sha256 removes everything', async () => {
      const alice = { Authorization: `Bearer ${await server.token('alice-c')}` };
      const bob = { Authorization: `Bearer ${await server.token('bob-c')}` };
      const partial = async (auth: Record<string, string>, body: Buffer | null, length = 3) => {
        const url = (await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...auth, 'Upload-Length': String(length), 'Upload-Concat': 'partial' } })).headers.get('location')!;
        if (body) assert.equal((await patchUpload(url, auth, 0, body)).status, 204);
        return url;
      };
      const final = (auth: Record<string, string>, urls: string[], meta: Record<string, string> = {}) => fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...TUS, ...auth, 'Upload-Concat': `final;${urls.join(' ')}`, ...(Object.keys(meta).length ? { 'Upload-Metadata': metadataHeader(meta) } : {}) },
      });
      const a1 = await partial(alice, Buffer.from('abc'));
      const b1 = await partial(bob, Buffer.from('xyz'));
      await expectProblem(await final(alice, [a1, b1]), 404, 'not_found');
      const incomplete = await partial(alice, null);
      await expectProblem(await final(alice, [a1, incomplete]), 400, 'invalid_concatenation');
      const plain = (await createUpload(server.url, alice, 3)).headers.get('location')!;
      await patchUpload(plain, alice, 0, Buffer.from('ab'));
      await expectProblem(await final(alice, [a1, plain]), 400, 'invalid_concatenation');
      await expectProblem(await final(alice, [a1, a1]), 400, 'invalid_concatenation');
      const withBytes = await fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...TUS, ...alice, 'Upload-Concat': `final;${a1}`, 'Content-Type': 'application/offset+octet-stream' },
        body: 'extra',
      });
      await expectProblem(withBytes, 400, 'invalid_concatenation');
      const noVersion = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...alice, 'Upload-Concat': `final;${a1}` } });
      await expectProblem(noVersion, 412, 'precondition_failed');
      // Nothing of the refused finals stayed; the partial uploads are still there.
      assert.equal((await headUpload(a1, alice)).status, 200);
      assert.equal((await headUpload(b1, bob)).status, 200);

      const a2 = await partial(alice, Buffer.from('def'));
      await expectProblem(await final(alice, [a1, a2], { sha256: sha256(Buffer.from('not this')) }), 460, 'checksum_mismatch');
      assert.equal((await headUpload(a1, alice)).status, 404);
      assert.equal((await headUpload(a2, alice)).status, 404);
      assert.deepEqual(await list(alice), []);

      // Relative URLs are fine too; the order of the URLs is the order of the bytes.
      const a3 = await partial(alice, Buffer.from('123'));
      const a4 = await partial(alice, Buffer.from('456'));
      const ok = await final(alice, [new URL(a4).pathname, new URL(a3).pathname], { filename: 'n.txt', sha256: sha256(Buffer.from('456123')) });
      assert.equal(ok.status, 201, await ok.clone().text());
      assert.ok(ok.headers.get('location'));
      assert.equal((await server.readStored(ok.headers.get('x-file-key')!))!.toString(), '456123');
      await expectProblem(await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...alice, 'Upload-Length': '1', 'Upload-Concat': 'sideways' } }), 400, 'invalid_header');
    });

    test('a user at the limit of unfinished uploads can still join their partial uploads; a new upload is refused until then', async () => {
      const limited = await startTestServer({ storage: backend, env: { UPLOAD_MAX_UNFINISHED_PER_USER: '3' } });
      try {
        const auth = { Authorization: `Bearer ${await limited.token('parallel')}` };
        const urls: string[] = [];
        for (const part of ['ab', 'cd', 'ef']) {
          const res = await fetch(`${limited.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...auth, 'Upload-Length': '2', 'Upload-Concat': 'partial' } });
          assert.equal(res.status, 201);
          urls.push(res.headers.get('location')!);
          assert.equal((await patchUpload(urls.at(-1)!, auth, 0, Buffer.from(part))).status, 204);
        }
        await expectProblem(await createUpload(limited.url, auth, 1), 429, 'too_many_unfinished_uploads');
        const joined = await fetch(`${limited.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...auth, 'Upload-Concat': `final;${urls.join(' ')}` } });
        assert.equal(joined.status, 201, await joined.clone().text());
        assert.equal((await limited.readStored(joined.headers.get('x-file-key')!))!.toString(), 'abcdef');
        const usage = await (await fetch(`${limited.url}/v1/usage`, { headers: auth })).json();
        assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [6, 0]);
        assert.equal((await createUpload(limited.url, auth, 1)).status, 201, 'the partial uploads freed their places');
      } finally {
        await limited.stop();
      }
    });

    test('an idle partial upload expires with its reservation, and a terminated one goes, both without webhooks', async () => {
      let clock = Date.now();
      const expiring = await startTestServer({
        storage: backend,
        now: () => clock,
        env: { UPLOAD_EXPIRY_SECONDS: '3600', WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: 'a-plain-secret-of-at-least-32-characters' },
      });
      try {
        const auth = { Authorization: `Bearer ${await expiring.token('idler')}` };
        const create = async () => (await fetch(`${expiring.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...auth, 'Upload-Length': '10', 'Upload-Concat': 'partial' } })).headers.get('location')!;
        const idle = await create();
        const terminated = await create();
        await patchUpload(idle, auth, 0, Buffer.from('12345'));
        assert.equal((await fetch(terminated, { method: 'DELETE', headers: { ...TUS, ...auth } })).status, 204);
        clock += 4000 * 1000;
        assert.equal(await expiring.services.lifecycle.expire(), 1);
        assert.equal((await headUpload(idle, auth)).status, 404);
        assert.equal(await expiring.hasUpload(idle.split('/').pop()!), false);
        assert.equal((await (await fetch(`${expiring.url}/v1/usage`, { headers: auth })).json()).reserved_bytes, 0);
        // A plain upload's outcome is still announced, so delivery is known to work here.
        const plain = (await createUpload(expiring.url, auth, 1)).headers.get('location')!;
        await fetch(plain, { method: 'DELETE', headers: { ...TUS, ...auth } });
        await until('upload.failed delivered', () => receiver.forUpload(plain.split('/').pop()!).some((r) => r.type === 'upload.failed'));
        const ids = new Set([idle, terminated].map((u) => u.split('/').pop()));
        assert.equal(receiver.accepted().filter((r) => ids.has(r.data.upload_id as string)).length, 0);
      } finally {
        await expiring.stop();
      }
    });

    test('a service acting for a user: partial and final uploads name the user; another user\'s partials are not found', async () => {
      const service = { 'X-Service-Token': server.serviceToken };
      const partial = async (userId: string, body: string) => {
        const res = await fetch(`${server.url}/v1/uploads`, {
          method: 'POST',
          headers: { ...TUS, ...service, 'Upload-Length': String(body.length), 'Upload-Concat': 'partial', 'Upload-Metadata': metadataHeader({ user_id: userId }) },
        });
        assert.equal(res.status, 201);
        assert.equal((await patchUpload(res.headers.get('location')!, service, 0, Buffer.from(body))).status, 204);
        return res.headers.get('location')!;
      };
      const final = (userId: string, urls: string[]) => fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...TUS, ...service, 'Upload-Concat': `final;${urls.join(' ')}`, 'Upload-Metadata': metadataHeader({ user_id: userId, filename: 'joined.txt' }) },
      });
      const p1 = await partial('carol-s', 'hello ');
      const p2 = await partial('carol-s', 'world');
      await expectProblem(await final('dave-s', [p1, p2]), 404, 'not_found');
      const ok = await final('carol-s', [p1, p2]);
      assert.equal(ok.status, 201);
      const key = ok.headers.get('x-file-key')!;
      assert.match(key, /^users\/carol-s\//);
      assert.equal((await server.readStored(key))!.toString(), 'hello world');
    });
  });
}
