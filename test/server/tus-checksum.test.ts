// tus checksum extension (Upload-Checksum) on both backends, with tuspy as the real client, and the
// lenient Upload-Metadata that TUSKit 3.0–3.1.4 sends.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Storage } from '../../server/storage/s3.ts';
import { expectProblem } from '../helpers/problem.ts';
import { runPython } from '../helpers/python.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { b64, createUpload, headUpload, patchUpload, TUS } from '../helpers/tus.ts';

const MiB = 1024 * 1024;

function digest(algorithm: string, data: Buffer): string {
  return createHash(algorithm).update(data).digest('base64');
}

for (const backend of backendsUnderTest()) {
  describe(`tus checksum (${backend})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ storage: backend });
    });
    after(() => server.stop());

    /** Bytes the store holds for an unfinished upload, as the backend itself reports them. */
    async function storedBytes(uploadId: string): Promise<number> {
      if (backend === 'file') return (await fs.stat(path.join(server.dataDir, 'uploads', uploadId))).size;
      const store = (server.services.storage as S3Storage).tusStore;
      return ((await store.partsBytes(uploadId)) ?? 0) + (await store.incompletePartBytes(uploadId));
    }

    async function fileRecord(auth: Record<string, string>, key: string): Promise<{ sha256: string; size: number; filename: string; content_type: string }> {
      const res = await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth });
      assert.equal(res.status, 200);
      return res.json();
    }

    test('OPTIONS advertises the checksum extension and its algorithms', async () => {
      const res = await fetch(`${server.url}/v1/uploads`, { method: 'OPTIONS' });
      assert.equal(res.status, 204);
      assert.ok(res.headers.get('tus-extension')!.split(',').includes('checksum'), res.headers.get('tus-extension')!);
      assert.equal(res.headers.get('tus-checksum-algorithm'), 'sha1,md5,sha256');
    });

    test('a wrong checksum answers 460, keeps none of the bytes (not even a whole S3 part) and leaves the offset', async () => {
      const auth = { Authorization: `Bearer ${await server.token('summer')}` };
      const data = randomBytes(12 * MiB);
      const url = (await createUpload(server.url, auth, data.length, { filename: 'sums.bin' })).headers.get('location')!;
      const id = url.split('/').pop()!;
      const send = (from: number, to: number, header: string) => patchUpload(url, auth, from, data.subarray(from, to), { 'Upload-Checksum': header });

      assert.equal((await send(0, MiB, `sha1 ${digest('sha1', data.subarray(0, MiB))}`)).status, 204);
      // 9 MiB with the checksum of other bytes: on S3 more than a part (8 MiB) would have been committed.
      const wrong = await send(MiB, 10 * MiB, `md5 ${digest('md5', randomBytes(16))}`);
      await expectProblem(wrong, 460, 'checksum_mismatch');
      assert.equal(wrong.headers.get('tus-resumable'), '1.0.0');
      assert.equal((await headUpload(url, auth)).headers.get('upload-offset'), String(MiB));
      assert.equal(await storedBytes(id), MiB);
      // An algorithm the server does not know is 400, and nothing moves either.
      await expectProblem(await send(MiB, 2 * MiB, `crc32 ${Buffer.alloc(4).toString('base64')}`), 400, 'unsupported_checksum_algorithm');
      await expectProblem(await send(MiB, 2 * MiB, 'sha1 AAAA'), 400, 'invalid_header');
      assert.equal((await headUpload(url, auth)).headers.get('upload-offset'), String(MiB));

      const good = await send(MiB, 10 * MiB, `md5 ${digest('md5', data.subarray(MiB, 10 * MiB))}`);
      assert.equal(good.status, 204);
      assert.equal(good.headers.get('upload-offset'), String(10 * MiB));
      const last = await send(10 * MiB, data.length, `sha256 ${digest('sha256', data.subarray(10 * MiB))}`);
      assert.equal(last.status, 200, await last.clone().text());
      const key = last.headers.get('x-file-key')!;
      // The whole-file SHA-256 never absorbed the refused bytes.
      assert.equal((await fileRecord(auth, key)).sha256, createHash('sha256').update(data).digest('hex'));
      assert.ok((await server.readStored(key))!.equals(data));
    });

    test('a checksummed creation-with-upload is verified before the upload exists', async () => {
      const auth = { Authorization: `Bearer ${await server.token('creator')}` };
      const data = randomBytes(3000);
      const create = (checksum: string) => fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...TUS, ...auth, 'Upload-Length': String(data.length), 'Content-Type': 'application/offset+octet-stream', 'Upload-Checksum': checksum },
        body: new Uint8Array(data),
      });
      await expectProblem(await create(`sha1 ${digest('sha1', randomBytes(8))}`), 460, 'checksum_mismatch');
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal(usage.reserved_bytes, 0);
      const ok = await create(`sha1 ${digest('sha1', data)}`);
      assert.equal(ok.status, 201);
      assert.ok((await server.readStored(ok.headers.get('x-file-key')!))!.equals(data));
    });

    test('tuspy with upload_checksum=True: a corrupted chunk is refused (460); chunked, interrupted, resumed, stored exactly', async () => {
      const auth = { Authorization: `Bearer ${await server.token('pythonista')}` };
      const data = randomBytes(3 * MiB + 123);
      const dir = tempDir('sl-tuspy-');
      const file = path.join(dir, 'report.bin');
      writeFileSync(file, data);
      const script = `
import hashlib, os
from tusclient import client
from tusclient.exceptions import TusUploadFailed
from tusclient.uploader import Uploader
c = client.TusClient(os.environ['ENDPOINT'], headers={'Authorization': os.environ['AUTH']})
u = c.uploader(file_path=os.environ['FILE'], chunk_size=1024 * 1024, upload_checksum=True, metadata={'filename': 'report.bin'}, retries=0)
u.upload(stop_at=2 * 1024 * 1024)
print('stopped', u.offset, flush=True)
# A chunk whose checksum does not match its bytes (as if corrupted in transit) is refused.
class Corrupting(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ('sha1', lambda chunk: hashlib.sha1(b'corrupted' + chunk))
t = Corrupting(file_path=os.environ['FILE'], client=c, url=u.url, chunk_size=1024 * 1024, upload_checksum=True, retries=0)
try:
    t.upload_chunk()
    print('accepted', flush=True)
except TusUploadFailed as error:
    print('refused', error.status_code, flush=True)
# A new uploader resumes from the stored URL (as after a restart of the program).
v = c.uploader(file_path=os.environ['FILE'], url=u.url, chunk_size=1024 * 1024, upload_checksum=True, retries=0)
assert v.offset == 2 * 1024 * 1024, v.offset
v.upload()
print('done', v.offset, v.request.response_headers.get('x-file-key'), flush=True)
`;
      const run = await runPython(script, { ENDPOINT: `${server.url}/v1/uploads`, AUTH: auth.Authorization, FILE: file });
      await fs.rm(dir, { recursive: true, force: true });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /refused 460/);
      const [, offset, key] = /done (\d+) (\S+)/.exec(run.stdout)!;
      assert.equal(Number(offset), data.length);
      const record = await fileRecord(auth, key!);
      assert.equal(record.sha256, createHash('sha256').update(data).digest('hex'));
      assert.equal(record.filename, 'report.bin');
      assert.ok((await server.readStored(key!))!.equals(data));
    });

    test('features the server does not offer answer 4xx, never a 5xx a client would retry', async () => {
      const auth = { Authorization: `Bearer ${await server.token('prober')}` };
      const url = (await createUpload(server.url, auth, 5)).headers.get('location')!;
      const root = `${server.url}/v1/uploads`;
      const cases: Array<[string, string, Record<string, string>, number, string]> = [
        ['PUT', url, TUS, 405, 'method_not_allowed'],
        ['PUT', root, TUS, 405, 'method_not_allowed'],
        ['POST', root, { ...TUS, 'Upload-Defer-Length': '2' }, 400, 'invalid_header'],
        ['POST', root, { ...TUS, 'Upload-Concat': 'final;' }, 400, 'invalid_concatenation'],
        ['POST', root, { ...TUS, 'Upload-Concat': 'sideways', 'Upload-Length': '1' }, 400, 'invalid_header'],
        ['POST', root, { 'Tus-Resumable': '0.2.2', 'Upload-Length': '1' }, 412, 'precondition_failed'],
        ['POST', root, { 'Upload-Draft-Interop-Version': '7', 'Upload-Complete': '?0' }, 412, 'precondition_failed'],
        ['PATCH', url, { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Checksum': 'crc32 AAAAAA==' }, 400, 'unsupported_checksum_algorithm'],
      ];
      for (const [method, target, headers, status, code] of cases) {
        const res = await fetch(target, { method, headers: { ...auth, ...headers }, ...(method === 'PATCH' ? { body: 'hello' } : {}) });
        await expectProblem(res, status, code, `${method} ${JSON.stringify(headers)}`);
      }
      assert.equal((await headUpload(url, auth)).headers.get('upload-offset'), '0');
    });

    test('Upload-Metadata with a space after each comma (TUSKit 3.0–3.1.4) is accepted', async () => {
      const auth = { Authorization: `Bearer ${await server.token('tuskit')}` };
      const res = await fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...TUS, ...auth, 'Upload-Length': '5', 'Upload-Metadata': `filename ${b64('photo.txt')}, filetype ${b64('text/plain')}, folder ${b64('main/pictures')}` },
      });
      assert.equal(res.status, 201, await res.clone().text());
      const done = await patchUpload(res.headers.get('location')!, auth, 0, Buffer.from('hello'));
      assert.equal(done.status, 200);
      const record = await fileRecord(auth, done.headers.get('x-file-key')!);
      assert.deepEqual([record.filename, record.content_type], ['photo.txt', 'text/plain']);
    });
  });
}

describe('tus checksum over CORS', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { CORS_ORIGINS: 'https://app.example' } });
  });
  after(() => server.stop());

  test('a preflight for a PATCH with Upload-Checksum is allowed', async () => {
    const res = await fetch(`${server.url}/v1/uploads/0123456789abcdef0123456789abcdef`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PATCH', 'Access-Control-Request-Headers': 'upload-checksum,upload-offset' },
    });
    assert.ok(res.status < 300);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /Upload-Checksum/i);
  });
});
