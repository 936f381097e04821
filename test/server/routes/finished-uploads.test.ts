// A finished upload stays addressable at its tus URL while its file exists: HEAD reports it
// complete, a PATCH at its end answers the file record again, so a client whose final PATCH
// response was lost ends with one file and one charge. Real clients through a proxy that drops
// that response: tus-js-client (with retries) and tuspy (Debian's, with a stored URL).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tus from 'tus-js-client';
import { startRecordingProxy, type RecordingProxy } from '../../helpers/recording-proxy.ts';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, tempDir, type TestServer } from '../../helpers/server.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../../helpers/tus.ts';

/** The response that carries the new file's key: the final PATCH's. */
const finalPatch = (req: { method?: string }, res: { headers: Record<string, unknown> }) =>
  req.method === 'PATCH' && res.headers['x-file-key'] !== undefined;

// tuspy 1.0 (Debian python3-tuspy), run by Debian's python: a stored URL in a TinyDB file, as its
// docs show for resuming across runs. Prints the offset it ended at, or the exception it raised.
const TUSPY = `
import json, sys
from tusclient import client
from tusclient.storage import filestorage
endpoint, token, file_path, store_path, retries = sys.argv[1:6]
c = client.TusClient(endpoint, headers={'Authorization': 'Bearer ' + token})
try:
    uploader = c.uploader(file_path, chunk_size=64 * 1024, retries=int(retries), retry_delay=0,
                          store_url=True, url_storage=filestorage.FileStorage(store_path),
                          metadata={'filename': 'from-python.bin'})
    uploader.upload()
    print(json.dumps({'ok': True, 'offset': uploader.offset, 'url': uploader.url}))
except Exception as error:
    print(json.dumps({'ok': False, 'error': '%s: %s' % (type(error).__name__, error)}))
`;

/** Asynchronously: the server and the proxy run in this process. */
async function runTuspy(args: string[]): Promise<{ ok: boolean; offset?: number; url?: string; error?: string }> {
  const child = spawn('/usr/bin/python3', ['-c', TUSPY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, err);
  return JSON.parse(out.trim().split('\n').pop()!);
}

for (const backend of backendsUnderTest()) {
  describe(`a finished upload stays addressable (${backend})`, () => {
    let server: TestServer;
    let proxy: RecordingProxy;
    before(async () => {
      proxy = await startRecordingProxy();
      // Clients learn upload URLs from Location: they must point at the proxy.
      server = await startTestServer({ storage: backend, env: { PUBLIC_URL: proxy.url } });
      proxy.target = server.url;
    });
    after(async () => {
      await proxy.close();
      await server.stop();
    });

    const auth = async (user: string) => ({ Authorization: `Bearer ${await server.token(user)}` });
    const direct = (uploadUrl: string) => uploadUrl.replace(proxy.url, server.url);
    async function filesAndUsage(headers: Record<string, string>) {
      const { files } = await (await fetch(`${server.url}/v1/files/all`, { headers })).json();
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers })).json();
      return { files: files as Array<{ key: string; size: number; sha256: string }>, usage };
    }

    test('HEAD answers it complete, a PATCH at its end answers the record again; others and deleted files get 404', async () => {
      const headers = await auth('olga');
      const data = randomBytes(5000);
      const url = direct((await createUpload(server.url, headers, data.length, { filename: 'o.bin' })).headers.get('location')!);
      const finished = await patchUpload(url, headers, 0, data);
      assert.equal(finished.status, 200);
      const record = await finished.json();

      const head = await headUpload(url, headers);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), '5000');
      assert.equal(head.headers.get('upload-length'), '5000');
      assert.equal(head.headers.get('x-file-key'), record.key);
      assert.equal(head.headers.get('tus-resumable'), '1.0.0');
      assert.equal(head.headers.get('cache-control'), 'no-store');

      const again = await patchUpload(url, headers, 5000, Buffer.alloc(0));
      assert.equal(again.status, 200);
      assert.equal(again.headers.get('upload-offset'), '5000');
      assert.equal(again.headers.get('x-file-key'), record.key);
      assert.deepEqual(await again.json(), record);
      // Another offset conflicts, as for any upload; termination goes through the files API.
      await expectProblem(await patchUpload(url, headers, 0, data), 409, 'offset_mismatch');
      await expectProblem(await fetch(url, { method: 'DELETE', headers: { ...TUS, ...headers } }), 409, 'conflict');
      // Stored and charged once, whatever was asked.
      const { files, usage } = await filesAndUsage(headers);
      assert.equal(files.length, 1);
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [5000, 0]);

      // Someone else's finished upload does not exist for them; the service token sees it.
      const other = await auth('mallory');
      await expectProblem(await headUpload(url, other), 404, 'not_found', '', 'HEAD');
      await expectProblem(await patchUpload(url, other, 5000, Buffer.alloc(0)), 404, 'not_found');
      assert.equal((await headUpload(url, { 'X-Service-Token': server.serviceToken })).status, 200);

      assert.equal((await fetch(`${server.url}/v1/files/${record.key}`, { method: 'DELETE', headers })).status, 200);
      await expectProblem(await headUpload(url, headers), 404, 'not_found', '', 'HEAD');
      await expectProblem(await patchUpload(url, headers, 5000, Buffer.alloc(0)), 404, 'not_found');
    });

    test('tus-js-client with retries: the final PATCH response is lost, the upload ends with one file and one charge', async () => {
      const headers = await auth('tina');
      const data = randomBytes(300 * 1024);
      proxy.drop(1, finalPatch);
      const result = await new Promise<{ key: string | null; status: number }>((resolve, reject) => {
        const upload = new tus.Upload(data, {
          endpoint: `${proxy.url}/v1/uploads`,
          headers,
          metadata: { filename: 'lost-answer.bin' },
          chunkSize: 100 * 1024,
          retryDelays: [0, 100, 500],
          storeFingerprintForResuming: false,
          onError: reject,
          onSuccess: ({ lastResponse }) => resolve({ key: lastResponse.getHeader('X-File-Key') ?? null, status: lastResponse.getStatus() }),
        });
        upload.start();
      });
      assert.equal(proxy.dropped.length, 1, 'the final PATCH response was dropped');
      const { files, usage } = await filesAndUsage(headers);
      assert.equal(files.length, 1, `files: ${JSON.stringify(files)}`);
      assert.equal(files[0]!.size, data.length);
      assert.equal(files[0]!.sha256, createHash('sha256').update(data).digest('hex'));
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0]);
      assert.equal(result.key, files[0]!.key, 'the client learnt the key from the HEAD that found the upload finished');
      assert.ok((await server.readStored(files[0]!.key))!.equals(data));
    });

    test('tuspy with a stored URL: the final PATCH response is lost, its retry and a later run end with one file and one charge', async () => {
      const headers = await auth('pia');
      const dir = tempDir('sl-tuspy-');
      const file = path.join(dir, 'from-python.bin');
      const data = randomBytes(200 * 1024);
      writeFileSync(file, data);
      const store = path.join(dir, 'urls.json');
      const token = headers.Authorization.slice('Bearer '.length);

      proxy.drop(1, finalPatch);
      // The run that loses the answer: its retry asks HEAD, finds every byte there, and sends the
      // empty PATCH at the end, which answers the record.
      const first = await runTuspy([`${proxy.url}/v1/uploads`, token, file, store, '2']);
      assert.equal(proxy.dropped.length > 0 && proxy.dropped.at(-1)!.startsWith('PATCH'), true);
      assert.deepEqual(first.ok ? { ok: true, offset: first.offset } : first, { ok: true, offset: data.length });
      // A later run with the stored URL resumes at the end: nothing to send, no new upload.
      const later = await runTuspy([`${proxy.url}/v1/uploads`, token, file, store, '0']);
      assert.deepEqual(later.ok ? { ok: true, offset: later.offset, url: later.url } : later, { ok: true, offset: data.length, url: first.url });

      const { files, usage } = await filesAndUsage(headers);
      assert.equal(files.length, 1, `files: ${JSON.stringify(files)}`);
      assert.equal(files[0]!.sha256, createHash('sha256').update(data).digest('hex'));
      assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0]);
    });
  });
}
