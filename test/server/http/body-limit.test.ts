// Request bodies outside tus are bounded (BODY_LIMIT_BYTES, 1 MiB): a 256 MiB JSON body, chunked
// or with its Content-Length, is answered 413 `body_too_large` before it is buffered — measured on
// a server process's own VmRSS while /healthz keeps answering. Bodies within the limit and tus
// uploads of any size are unaffected.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { SERVICE_TOKEN, spawnServer, startTestServer, tempDir, type SpawnedServer, type TestServer } from '../../helpers/server.ts';
import { tusUpload } from '../../helpers/tus.ts';
import { MiB, sendHugeBody } from './huge-body.ts';

describe('a 256 MiB body to POST /v1/files/batch-download (server process)', () => {
  const dataDir = tempDir();
  let server: SpawnedServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await spawnServer(dataDir);
    const minted = await fetch(`${server.url}/v1/files/generate-token?user_id=huge`, { method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN } });
    auth = { Authorization: `Bearer ${(await minted.json()).token}` };
  });
  after(async () => {
    await server?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const chunked of [false, true]) {
    test(`${chunked ? 'chunked' : 'with Content-Length'}: 413 body_too_large, memory flat, /healthz answering`, async () => {
      const result = await sendHugeBody({
        url: `${server.url}/v1/files/batch-download`,
        pid: server.pid,
        headers: auth,
        totalBytes: 256 * MiB,
        chunked,
        // Buffering the body would grow the process by 256 MiB and more: stop well before.
        abortAboveBytes: 96 * MiB,
      });
      const grew = result.peakRssBytes - result.baselineRssBytes;
      assert.equal(result.gaveUp, false, `the server's memory grew by ${grew} bytes: it buffers the body`);
      assert.equal(result.status, 413, result.body);
      const problem = JSON.parse(result.body);
      assert.equal(problem.code, 'body_too_large');
      assert.ok(grew < 48 * MiB, `VmRSS grew by ${(grew / MiB).toFixed(1)} MiB`);
      assert.ok(result.sentBytes < 256 * MiB, 'refused before the whole body was sent');
      assert.ok(result.healthz.length > 0 && result.healthz.every((s) => s === 200), `/healthz while sending: ${result.healthz}`);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    });
  }
});

describe('the body limit (BODY_LIMIT_BYTES)', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer({ env: { BODY_LIMIT_BYTES: '4096' } });
    auth = { Authorization: `Bearer ${await server.token('bea')}` };
  });
  after(() => server.stop());

  const batch = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json', ...headers }, body, duplex: 'half' } as RequestInit);
  const padded = (size: number) => {
    const json = JSON.stringify({ keys: ['bea/none.bin'] });
    return json + ' '.repeat(size - json.length);
  };
  const chunks = (size: number) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(padded(size)));
        controller.close();
      },
    });

  test('a body within the limit reaches the route; one past it is refused, declared or chunked', async () => {
    // Within the limit: the route itself answers (no such file).
    const within = await batch(padded(4096));
    assert.notEqual(within.status, 413, await within.text());
    await expectProblem(await batch(padded(4097)), 413, 'body_too_large');
    const chunkedWithin = await batch(chunks(4096));
    assert.notEqual(chunkedWithin.status, 413, await chunkedWithin.text());
    await expectProblem(await batch(chunks(4097)), 413, 'body_too_large');
    // Any route outside tus, whether or not it reads a body, and before authentication.
    await expectProblem(await fetch(`${server.url}/v1/files/generate-token?user_id=x`, { method: 'POST', body: 'x'.repeat(5000) }), 413, 'body_too_large');
    await expectProblem(await fetch(`${server.url}/v1/files/bea%2Fnone.bin`, { method: 'DELETE', headers: auth, body: 'x'.repeat(5000) }), 413, 'body_too_large');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  test('tus bodies are not bounded by it: an upload far larger than the limit finishes', async () => {
    const data = randomBytes(256 * 1024);
    const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'big.bin' } }).done;
    assert.ok(fileKey);
    assert.ok((await server.readStored(fileKey))?.equals(data));
  });
});
