// Expiry never cuts a request that is receiving bytes: with UPLOAD_EXPIRY_SECONDS=2 (the server's
// clock is the test's, moved 3 s per chunk), PATCHes that stream slowly while expiry runs between
// their chunks complete with every byte, and the upload is not taken for idle right after them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { createUpload, headUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';

const CHUNKS = 16;
/** Real time between chunks: together longer than the 3 s tus waits before cancelling a lock holder. */
const PACE_MS = 300;

/**
 * One PATCH whose body arrives in CHUNKS pieces; `between` runs after each piece but the last, while
 * the server is still waiting for the rest. `admitted` is awaited once, after the first piece:
 * until it resolves, `between` does not run. Settles once the answer and every `between` are in.
 */
async function slowPatch(url: string, auth: Record<string, string>, offset: number, body: Buffer, admitted: () => Promise<unknown>, between: () => Promise<void>) {
  const req = http.request(url, {
    method: 'PATCH',
    headers: { ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(body.length) },
  });
  const answer = new Promise<{ status: number; offset: string | undefined; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, offset: res.headers['upload-offset'] as string | undefined, body: text }));
    });
    req.on('error', reject);
  });
  const sending = (async () => {
    const size = Math.ceil(body.length / CHUNKS);
    for (let at = 0; at < body.length; at += size) {
      await new Promise<void>((done) => req.write(body.subarray(at, at + size), () => done()));
      if (at + size >= body.length) break;
      if (at === 0) await admitted();
      await new Promise((r) => setTimeout(r, PACE_MS));
      await between();
    }
    req.end();
  })();
  const [answered] = await Promise.all([answer, sending]);
  return answered;
}

for (const backend of backendsUnderTest()) {
  describe(`expiry and a streaming PATCH (${backend})`, () => {
    test('PATCHes streaming for longer than UPLOAD_EXPIRY_SECONDS complete, and their upload outlives them', async () => {
      let clock = Date.now();
      const server: TestServer = await startTestServer({ storage: backend, env: { UPLOAD_EXPIRY_SECONDS: '2' }, now: () => clock });
      try {
        const auth = { Authorization: `Bearer ${await server.token('slowpoke')}` };
        const data = randomBytes(2 * CHUNKS * 16 * 1024);
        const half = data.length / 2;
        const url = (await createUpload(server.url, auth, data.length, { filename: 'slow.bin' })).headers.get('location')!;
        const uploadId = new URL(url).pathname.split('/').pop()!;
        // An expiry pass before the route has counted the PATCH (a loaded machine can take that
        // long to read its headers and check its token) would find an upload that nobody is
        // writing to yet, idle since its creation, and rightly remove it.
        const receiving = () => until('the server to count the PATCH as receiving', () => server.services.lifecycle.requests.isReceiving(uploadId));
        const expired: number[] = [];
        const idlePasses = async () => {
          clock += 3000; // longer than the expiry since the request began
          expired.push(await server.services.lifecycle.expire());
        };

        const first = await slowPatch(url, auth, 0, data.subarray(0, half), receiving, idlePasses);
        assert.deepEqual([first.status, first.offset], [204, String(half)], first.body);
        // Right after it, within the expiry of its last byte: still there.
        expired.push(await server.services.lifecycle.expire());
        assert.equal((await headUpload(url, auth)).headers.get('upload-offset'), String(half));

        const second = await slowPatch(url, auth, half, data.subarray(half), receiving, idlePasses);
        assert.equal(second.status, 200, second.body);
        const record = JSON.parse(second.body);
        assert.equal(record.size, data.length);
        assert.equal(record.sha256, createHash('sha256').update(data).digest('hex'));
        assert.deepEqual(expired.filter((n) => n > 0), []);
      } finally {
        await server.stop();
      }
    });
  });
}
