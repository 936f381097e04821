// Uploads answered before their bodies are read (413 upload_too_large or quota_exceeded, 409
// offset_mismatch), behind Caddy, from a client whose body arrives slowly: the client gets the
// server's answer, not a 502 of Caddy's, and the instance stays in Caddy's rotation. The server
// reads such a body to its end after answering (server/http/unread-body.ts); closing under it made
// Caddy answer 502, and a passive health check then passed the instance over.
import assert from 'node:assert/strict';
import https from 'node:https';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { SERVICE_TOKEN, spawnServer, tempDir, type SpawnedServer } from '../helpers/server.ts';
import { freePort, httpsRequest, startCaddy, type CaddyProcess } from './caddy-process.ts';

const EDGE_SECRET = 'edge-secret-refusal-test-0123456789abcdef';
const MiB = 1024 * 1024;

describe('slow uploads refused behind Caddy', () => {
  const dataDir = tempDir();
  let server: SpawnedServer;
  let caddy: CaddyProcess;
  before(async () => {
    const httpsPort = await freePort();
    server = await spawnServer(dataDir, { EDGE_SECRET, PUBLIC_URL: `https://localhost:${httpsPort}`, MAX_UPLOAD_BYTES: String(4 * MiB), QUOTA_DEFAULT_BYTES: String(3 * MiB) });
    caddy = await startCaddy({ httpsPort, upstream: new URL(server.url).host, dataDir, edgeSecret: EDGE_SECRET });
  });
  after(async () => {
    await caddy?.stop();
    await server?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // Each refused three times in a row, as a client retrying would be, its 64 KiB pieces sent after
  // the previous one was taken, with a pause or none (a phone on a slow link).
  test('413 upload_too_large: the answer reaches the client, and the next request is served', async () => {
    for (const pauseMs of [0, 5, 20]) {
      const answer = await slowUpload(caddy, 'POST', '/v1/uploads', { 'Upload-Length': String(6 * MiB) }, 6 * MiB, pauseMs);
      assert.match(answer, /^413 .*"code":"upload_too_large"/);
    }
    assert.equal((await httpsRequest(`${caddy.origin}/healthz`, caddy.ca)).status, 200, 'the instance is still in rotation');
  });

  test('413 quota_exceeded: the same', async () => {
    for (const pauseMs of [0, 5, 20]) {
      const answer = await slowUpload(caddy, 'POST', '/v1/uploads', { 'Upload-Length': String(3.5 * MiB) }, 3.5 * MiB, pauseMs);
      assert.match(answer, /^413 .*"code":"quota_exceeded"/);
    }
    assert.equal((await httpsRequest(`${caddy.origin}/healthz`, caddy.ca)).status, 200, 'the instance is still in rotation');
  });

  test('409 offset_mismatch on a PATCH: the same, and the upload then resumes from its real offset', async () => {
    const created = await slowUpload(caddy, 'POST', '/v1/uploads', { 'Upload-Length': String(2 * MiB) }, 0, 0);
    const location = /^201 .*\nlocation: (\S+)/s.exec(created)?.[1];
    assert.ok(location, created);
    const path = new URL(location).pathname;
    for (const pauseMs of [0, 5, 20]) {
      const answer = await slowUpload(caddy, 'PATCH', path, { 'Upload-Offset': '65536' }, 2 * MiB - 65536, pauseMs);
      assert.match(answer, /^409 .*"code":"offset_mismatch"/);
    }
    const resumed = await slowUpload(caddy, 'PATCH', path, { 'Upload-Offset': '0' }, 2 * MiB, 0);
    assert.match(resumed, /^200 /);
  });
});

/** Sends `bodyBytes` in 64 KiB pieces, each after the previous was taken and `pauseMs`; resolves "status [location: …] body". */
function slowUpload(caddy: CaddyProcess, method: string, path: string, headers: Record<string, string>, bodyBytes: number, pauseMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const req = https.request(`${caddy.origin}${path}`, {
      method,
      ca: caddy.ca,
      headers: {
        'Tus-Resumable': '1.0.0',
        'X-Service-Token': SERVICE_TOKEN,
        'Upload-Metadata': `user_id ${Buffer.from('slow').toString('base64')}`,
        ...(bodyBytes > 0 ? { 'Content-Type': 'application/offset+octet-stream' } : {}),
        'Content-Length': String(bodyBytes),
        ...headers,
      },
    }, (res) => {
      let body = '';
      const location = res.headers.location ? `\nlocation: ${res.headers.location}` : '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(`${res.statusCode} ${body}${location}`));
    });
    req.on('error', reject);
    void (async () => {
      const piece = Buffer.alloc(64 * 1024, 1);
      for (let sent = 0; sent < bodyBytes && !req.destroyed; sent += piece.length) {
        if (!req.write(piece.subarray(0, Math.min(piece.length, bodyBytes - sent)))) await new Promise((r) => req.once('drain', r));
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
      req.end();
    })().catch(() => {});
  });
}
