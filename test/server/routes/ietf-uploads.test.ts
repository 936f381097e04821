// The IETF resumable-upload draft (interop versions 5 and 6) on the upload resources of tus, on both
// backends: tus-js-client's `ietf-draft-03` and `ietf-draft-05` protocols (interrupted and
// resumed), and raw draft requests for what the client does not exercise.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as tus from 'tus-js-client';
import { expectProblem } from '../../helpers/problem.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { bytes } from '../../helpers/tus.ts';

const KiB = 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface DraftResult {
  url: string;
  fileKey: string;
}

function draftUpload(
  endpoint: string,
  headers: Record<string, string>,
  data: Buffer,
  protocol: 'ietf-draft-03' | 'ietf-draft-05',
  options: { stopAt?: number; uploadUrl?: string } = {},
): { done: Promise<DraftResult | 'aborted'>; upload: tus.Upload } {
  let upload!: tus.Upload;
  const done = new Promise<DraftResult | 'aborted'>((resolve, reject) => {
    // `protocol` is read by tus-js-client 4 but missing from its type declarations.
    upload = new tus.Upload(data, {
      endpoint: `${endpoint}/v1/uploads`,
      uploadUrl: options.uploadUrl ?? null,
      ...({ protocol } as object),
      headers,
      metadata: { filename: `${protocol}.bin`, sha256: sha256(data) },
      chunkSize: 256 * KiB,
      // The aborted attempt's last request may still be landing when the resume asks for the offset.
      retryDelays: options.uploadUrl ? [0, 200, 500, 1000, 2000] : [],
      storeFingerprintForResuming: false,
      onProgress(sent) {
        if (options.stopAt !== undefined && sent >= options.stopAt) upload.abort().then(() => resolve('aborted'), reject);
      },
      onError: reject,
      onSuccess: ({ lastResponse }) => resolve({ url: upload.url!, fileKey: lastResponse.getHeader('X-File-Key')! }),
    });
    upload.start();
  });
  return { done, upload };
}

for (const backend of backendsUnderTest()) {
  describe(`IETF resumable-upload draft (${backend})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ storage: backend });
    });
    after(() => server.stop());
    const record = async (auth: Record<string, string>, key: string) => (await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth })).json();

    for (const [protocol, version] of [['ietf-draft-03', '5'], ['ietf-draft-05', '6']] as const) {
      test(`tus-js-client protocol ${protocol}: several chunks, interrupted and resumed`, async () => {
        const auth = { Authorization: `Bearer ${await server.token(`draft-${version}`)}` };
        const data = randomBytes(1300 * KiB + 17);
        const first = draftUpload(server.url, auth, data, protocol, { stopAt: 600 * KiB });
        assert.equal(await first.done, 'aborted');
        const url = first.upload.url!;
        const head = await fetch(url, { method: 'HEAD', headers: { ...auth, 'Upload-Draft-Interop-Version': version } });
        assert.equal(head.status, 204);
        assert.equal(head.headers.get('upload-complete'), '?0');
        assert.equal(head.headers.get('cache-control'), 'no-store');
        assert.equal(head.headers.get('upload-draft-interop-version'), version);
        assert.match(head.headers.get('upload-limit')!, /^max-size=\d+$/);
        assert.ok(Number(head.headers.get('upload-offset')) > 0);

        const second = draftUpload(server.url, auth, data, protocol, { uploadUrl: url });
        const result = (await second.done) as DraftResult;
        assert.equal(result.url, url);
        assert.ok(result.fileKey, 'the last append answers with the file');
        assert.ok((await server.readStored(result.fileKey))!.equals(data));
        const file = await record(auth, result.fileKey);
        assert.equal(file.sha256, sha256(data));
        assert.equal(file.filename, `${protocol}.bin`);
      });
    }

    test('a whole file in one creation request (Upload-Complete: ?1), typed and named by HTTP headers', async () => {
      const auth = { Authorization: `Bearer ${await server.token('one-shot')}` };
      const res = await fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...auth, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename="notes.txt"' },
        body: 'plain text, all of it',
      });
      assert.equal(res.status, 201, await res.clone().text());
      assert.equal(res.headers.get('upload-complete'), '?1');
      assert.ok(res.headers.get('location'));
      const file = await record(auth, res.headers.get('x-file-key')!);
      assert.deepEqual([file.filename, file.content_type, file.size], ['notes.txt', 'text/plain', 21]);
    });

    test('a length learnt at the end: ?0 creation, appends, a last append of unknown size with ?1', async () => {
      const auth = { Authorization: `Bearer ${await server.token('streamer')}` };
      const created = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...auth, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0' } });
      assert.equal(created.status, 201);
      assert.equal(created.headers.get('upload-complete'), '?0');
      const url = created.headers.get('location')!;
      const data = randomBytes(300 * KiB);
      const draft = { ...auth, 'Upload-Draft-Interop-Version': '6' };
      // Interop 6 appends must say application/partial-upload.
      await expectProblem(
        await fetch(url, { method: 'PATCH', headers: { ...draft, 'Upload-Offset': '0', 'Upload-Complete': '?0', 'Content-Type': 'application/octet-stream' }, body: bytes(data.subarray(0, 10)) }),
        415, 'unsupported_media_type',
      );
      const part = await fetch(url, { method: 'PATCH', headers: { ...draft, 'Upload-Offset': '0', 'Upload-Complete': '?0', 'Content-Type': 'application/partial-upload' }, body: bytes(data.subarray(0, 100 * KiB)) });
      assert.equal(part.status, 204);
      assert.equal(part.headers.get('upload-offset'), String(100 * KiB));
      // A streamed body (no Content-Length) that completes the upload.
      const rest = data.subarray(100 * KiB);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes(rest.subarray(0, 50 * KiB)));
          controller.enqueue(bytes(rest.subarray(50 * KiB)));
          controller.close();
        },
      });
      const last = await fetch(url, {
        method: 'PATCH',
        headers: { ...draft, 'Upload-Offset': String(100 * KiB), 'Upload-Complete': '?1', 'Content-Type': 'application/partial-upload' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      assert.equal(last.status, 200, await last.clone().text());
      assert.equal(last.headers.get('upload-complete'), '?1');
      assert.ok((await server.readStored(last.headers.get('x-file-key')!))!.equals(data));
    });

    test('refusals: unknown interop version, missing Upload-Complete, someone else\'s upload', async () => {
      const alice = { Authorization: `Bearer ${await server.token('alice-d')}` };
      const bob = { Authorization: `Bearer ${await server.token('bob-d')}` };
      await expectProblem(await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...alice, 'Upload-Draft-Interop-Version': '4', 'Upload-Complete': '?0' } }), 412, 'precondition_failed');
      await expectProblem(await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...alice, 'Upload-Draft-Interop-Version': '6' } }), 400, 'invalid_header');
      const url = (await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...alice, 'Upload-Draft-Interop-Version': '5', 'Upload-Complete': '?0' } })).headers.get('location')!;
      const theirs = await fetch(url, { method: 'HEAD', headers: { ...bob, 'Upload-Draft-Interop-Version': '5' } });
      assert.equal(theirs.status, 404);
      const append = await fetch(url, { method: 'PATCH', headers: { ...bob, 'Upload-Draft-Interop-Version': '5', 'Upload-Offset': '0', 'Upload-Complete': '?1' }, body: 'x' });
      await expectProblem(append, 404, 'not_found');
      // Upload-Complete: ?1 with a body that does not end where the length says: 400, nothing stored.
      const short = await fetch(`${server.url}/v1/uploads`, {
        method: 'POST', headers: { ...alice, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Upload-Length': '10' }, body: 'abc',
      });
      await expectProblem(short, 400, 'invalid_header', 'a complete creation shorter than its Upload-Length');
      const sized = (await fetch(`${server.url}/v1/uploads`, {
        method: 'POST', headers: { ...alice, 'Upload-Draft-Interop-Version': '5', 'Upload-Complete': '?0', 'Upload-Length': '6' },
      })).headers.get('location')!;
      const shortAppend = await fetch(sized, { method: 'PATCH', headers: { ...alice, 'Upload-Draft-Interop-Version': '5', 'Upload-Offset': '0', 'Upload-Complete': '?1' }, body: 'abc' });
      await expectProblem(shortAppend, 400, 'invalid_header', 'a complete append that stops short');
      const offset = await fetch(sized, { method: 'HEAD', headers: { ...alice, 'Upload-Draft-Interop-Version': '5' } });
      assert.equal(offset.headers.get('upload-offset'), '0', 'nothing of it was stored');
      const whole = await fetch(sized, { method: 'PATCH', headers: { ...alice, 'Upload-Draft-Interop-Version': '5', 'Upload-Offset': '0', 'Upload-Complete': '?1' }, body: 'abcdef' });
      assert.equal(whole.status, 200, await whole.clone().text());
      assert.equal(whole.headers.get('upload-complete'), '?1');
      await fetch(`${server.url}/v1/files/${whole.headers.get('x-file-key')}`, { method: 'DELETE', headers: alice });
      const cancel = await fetch(url, { method: 'DELETE', headers: { ...alice, 'Upload-Draft-Interop-Version': '5' } });
      assert.equal(cancel.status, 204);
      assert.equal((await fetch(`${server.url}/v1/usage`, { headers: alice }).then((r) => r.json())).reserved_bytes, 0);
    });
  });
}
