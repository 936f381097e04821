// The production edge end to end: a real server process behind Caddy started from the repository's
// Caddyfile, over HTTPS (tls internal). A resumable upload with tus-js-client (cut, then resumed),
// a Range download of a signed link whose bytes Caddy sends (the offload), a batch ZIP; every
// Location and link points at the proxy; the internal offload headers never reach a client; a
// request that bypasses Caddy still gets the bytes from Node.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tus from 'tus-js-client';
import { spawnServer, tempDir, SERVICE_TOKEN, type SpawnedServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';
import { readWithYauzl } from '../helpers/zip.ts';
import { freePort, httpsRequest, startCaddy, type CaddyProcess } from './caddy-process.ts';

const EDGE_SECRET = 'edge-secret-caddy-test-0123456789abcdef';
const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const INTERNAL = ['x-sl-offload-path', 'x-sl-offload-range', 'x-edge-secret'];

function assertNoInternalHeaders(headers: Record<string, unknown>, what: string): void {
  for (const name of INTERNAL) assert.equal(headers[name], undefined, `${what}: ${name} must not reach a client`);
}

describe('behind Caddy (HTTPS, Caddyfile)', () => {
  const dataDir = tempDir();
  let server: SpawnedServer;
  let caddy: CaddyProcess;
  let token: string;
  const data = randomBytes(8 * MiB + 123);
  let fileKey: string;

  before(async () => {
    const httpsPort = await freePort();
    server = await spawnServer(dataDir, { EDGE_SECRET, PUBLIC_URL: `https://localhost:${httpsPort}` });
    caddy = await startCaddy({ httpsPort, upstream: new URL(server.url).host, dataDir, edgeSecret: EDGE_SECRET });
    const minted = await httpsRequest(`${caddy.origin}/v1/files/generate-token?user_id=ona`, caddy.ca, { method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN } });
    assert.equal(minted.status, 200, minted.body.toString());
    token = JSON.parse(minted.body.toString()).token;
  });
  after(async () => {
    await caddy?.stop();
    await server?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a resumable upload through the proxy: cut after a few chunks, resumed from the server offset', async () => {
    const httpStack = new tus.DefaultHttpStack({ ca: caddy.ca });
    const options = {
      endpoint: `${caddy.origin}/v1/uploads`,
      headers: { Authorization: `Bearer ${token}` },
      metadata: { filename: 'movie.bin', folder: 'edge' },
      chunkSize: MiB,
      retryDelays: [],
      httpStack,
    };
    const firstUrl = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        ...options,
        onError: reject,
        onChunkComplete: (_size, sent) => {
          if (sent >= 3 * MiB) upload.abort().then(() => resolve(upload.url!), reject);
        },
      });
      upload.start();
    });
    assert.ok(firstUrl.startsWith(`${caddy.origin}/v1/uploads/`), `Location points at the proxy: ${firstUrl}`);

    const head = await httpsRequest(firstUrl, caddy.ca, { method: 'HEAD', headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' } });
    const offset = Number(head.headers['upload-offset']);
    assert.ok(offset >= 3 * MiB && offset < data.length, `the server kept ${offset} bytes`);

    let resumedFrom = -1;
    const result = await new Promise<tus.HttpResponse>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        ...options,
        uploadUrl: firstUrl,
        onProgress: (sent) => {
          if (resumedFrom < 0) resumedFrom = sent;
        },
        onError: reject,
        onSuccess: ({ lastResponse }) => resolve(lastResponse),
      });
      upload.start();
    });
    assert.ok(resumedFrom >= offset, `resumed at ${resumedFrom}, not from 0`);
    fileKey = result.getHeader('X-File-Key')!;
    const record = JSON.parse(result.getBody());
    assert.equal(record.sha256, sha256(data));
    assert.equal(record.size, data.length);
  });

  test('a signed link through the proxy: Range and conditional requests, bytes sent by Caddy', async () => {
    const auth = { Authorization: `Bearer ${token}` };
    const signed = await httpsRequest(`${caddy.origin}/v1/files/signed-url?key=${encodeURIComponent(fileKey)}&disposition=inline`, caddy.ca, { headers: auth });
    const link = JSON.parse(signed.body.toString()).url as string;
    assert.ok(link.startsWith(`${caddy.origin}/get/`), `the link points at the proxy: ${link}`);

    const full = await httpsRequest(link, caddy.ca, { headers: { 'X-Request-Id': 'edge-full-1' } });
    assert.equal(full.status, 200);
    assert.ok(full.body.equals(data));
    assert.equal(full.headers['content-length'], String(data.length));
    assert.equal(full.headers.etag, `"${sha256(data)}"`, 'the strong SHA-256 ETag, not file_server\'s own');
    assert.equal(full.headers['content-type'], 'application/octet-stream');
    assert.match(String(full.headers['content-disposition']), /^inline; filename="movie.bin"/);
    assert.equal(full.headers['accept-ranges'], 'bytes');
    assert.equal(full.headers['strict-transport-security'], 'max-age=31536000');
    assertNoInternalHeaders(full.headers, 'full GET');

    const part = await httpsRequest(link, caddy.ca, { headers: { Range: 'bytes=1000-1999', 'X-Request-Id': 'edge-range-1' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${data.length}`);
    assert.ok(part.body.equals(data.subarray(1000, 2000)));
    assertNoInternalHeaders(part.headers, 'range GET');

    const suffix = await httpsRequest(link, caddy.ca, { headers: { Range: 'bytes=-10' } });
    assert.equal(suffix.status, 206);
    assert.ok(suffix.body.equals(data.subarray(data.length - 10)));

    const notModified = await httpsRequest(link, caddy.ca, { headers: { 'If-None-Match': `"${sha256(data)}"` } });
    assert.equal(notModified.status, 304);
    const ifRangeStale = await httpsRequest(link, caddy.ca, { headers: { 'If-Range': '"stale"', Range: 'bytes=0-9' } });
    assert.equal(ifRangeStale.status, 200, 'a stale If-Range gets the whole file');
    assert.equal(ifRangeStale.body.length, data.length);
    const multiple = await httpsRequest(link, caddy.ca, { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(multiple.status, 200, 'multiple ranges get the whole file, as without the proxy');
    const unsatisfiable = await httpsRequest(link, caddy.ca, { headers: { Range: `bytes=${data.length}-` } });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers['content-range'], `bytes */${data.length}`);
    const head = await httpsRequest(link, caddy.ca, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(data.length));
    assertNoInternalHeaders(head.headers, 'HEAD');
    const tampered = await httpsRequest(link.replace(/sig=[^&]+/, `sig=${'A'.repeat(43)}`), caddy.ca);
    assert.equal(tampered.status, 403);

    // Node decided and Caddy sent: the server wrote a few hundred bytes for each, not the file.
    // Caddy reads the bytes from DATA_DIR, so only a file on local disk is sent by it; from S3
    // (always so on PostgreSQL) Node streams them.
    if (server.storage !== 'file') return;
    const linesNow = () => server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    // A request's line is written once its response is over, after Caddy had it.
    const lines = await until('the lines of both offloaded requests', () => {
      const now = linesNow();
      return ['edge-full-1', 'edge-range-1'].every((id) => now.some((l) => l.msg === 'request' && l.request_id === id)) && now;
    });
    for (const id of ['edge-full-1', 'edge-range-1']) {
      const line = lines.find((l) => l.msg === 'request' && l.request_id === id);
      assert.ok(line, `the server logged ${id}`);
      assert.equal(line.via_edge, true);
      assert.ok((line.bytes_out as number) < 4096, `${id}: the server sent ${line.bytes_out} bytes itself`);
    }
  });

  test('bypassing Caddy: the same link gets the bytes from Node, a forged edge header changes nothing', async () => {
    const signed = await httpsRequest(`${caddy.origin}/v1/files/signed-url?key=${encodeURIComponent(fileKey)}`, caddy.ca, { headers: { Authorization: `Bearer ${token}` } });
    const link = new URL(JSON.parse(signed.body.toString()).url as string);
    const direct = `${server.url}${link.pathname}${link.search}`;
    const attempts: Array<Record<string, string>> = [{}, { 'X-Edge-Secret': 'not-the-secret-not-the-secret-0000', Range: 'bytes=0-' }];
    for (const headers of attempts) {
      const res = await fetch(direct, { headers });
      assert.equal(res.status, 'Range' in headers ? 206 : 200);
      for (const name of INTERNAL) assert.equal(res.headers.get(name), null, `${name} on a direct answer`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
    }
  });

  test('through Caddy nothing is local: /metrics is refused, and a client\'s own X-Forwarded-For is not believed', async () => {
    const metrics = await httpsRequest(`${caddy.origin}/metrics`, caddy.ca);
    assert.equal(metrics.status, 403, metrics.body.toString());
    assert.equal(JSON.parse(metrics.body.toString()).code, 'forbidden');
    await httpsRequest(`${caddy.origin}/healthz`, caddy.ca, { headers: { 'X-Forwarded-For': '203.0.113.66', 'X-Real-IP': '203.0.113.66', 'X-Request-Id': 'edge-forged-xff' } });
    // The same server straight from this machine: local.
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
    const line = await until('the request log line', () => server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'request' && l.request_id === 'edge-forged-xff'));
    assert.equal(line.via_edge, true);
    // Caddy replaces what the client wrote with the address it saw.
    assert.equal(line.client, '127.0.0.1');
  });

  test('a batch ZIP through the proxy', async () => {
    const made = await httpsRequest(`${caddy.origin}/v1/files/batch-download`, caddy.ca, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ keys: [fileKey], name: 'edge' }),
    });
    assert.equal(made.status, 200, made.body.toString());
    const { url } = JSON.parse(made.body.toString());
    assert.ok(url.startsWith(`${caddy.origin}/v1/files/batch-download/`), `the link points at the proxy: ${url}`);
    const zip = await httpsRequest(url, caddy.ca);
    assert.equal(zip.status, 200);
    assert.equal(zip.headers['content-type'], 'application/zip');
    assert.equal(zip.headers['content-length'], String(zip.body.length), 'Content-Length survives the proxy (no encode)');
    assert.equal(zip.headers['content-encoding'], undefined);
    const file = path.join(dataDir, 'edge.zip.test');
    writeFileSync(file, zip.body);
    const entries = await readWithYauzl(file);
    assert.deepEqual(entries.map((e) => e.name), ['edge/movie.bin']);
    assert.ok(entries[0]!.data.equals(data));
  });

  test('JSON documents are compressed; the tus and download paths are not', async () => {
    const doc = await httpsRequest(`${caddy.origin}/docs/openapi.json`, caddy.ca, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(doc.status, 200);
    assert.equal(doc.headers['content-encoding'], 'gzip');
    const options = await httpsRequest(`${caddy.origin}/v1/uploads`, caddy.ca, { method: 'OPTIONS', headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(options.headers['tus-version'], '1.0.0');
    assert.equal(options.headers['content-encoding'], undefined);
  });
});
