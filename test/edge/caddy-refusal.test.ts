// An upload refused before its body is read (413 upload_too_large or quota_exceeded), behind
// Caddy, from a client whose body arrives more slowly than the server's discard window: the client
// must get the 413, and the instance must stay in Caddy's rotation.
//
// Marked `todo` because it fails today (seen with Caddy 2.6.2): the server answers 413 before
// reading the body, and the connection to it closes while Caddy is still writing that body
// (Caddy logs "write: broken pipe" or "use of closed network connection"); Caddy answers 502
// instead of passing the 413 on, and its passive health check (`fail_duration 10s` in the
// Caddyfile) counts the instance as failed, so with one upstream every request answers 503 for
// 10 s. Making the upload route's connection close lingering, as server/http/body-limit.ts does
// for refused JSON bodies, was tried and did not change the answer.
import assert from 'node:assert/strict';
import https from 'node:https';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { SERVICE_TOKEN, spawnServer, tempDir, type SpawnedServer } from '../helpers/server.ts';
import { freePort, httpsRequest, startCaddy, type CaddyProcess } from './caddy-process.ts';

const EDGE_SECRET = 'edge-secret-refusal-test-0123456789abcdef';
const MiB = 1024 * 1024;

describe('a slow upload refused behind Caddy', () => {
  const dataDir = tempDir();
  let server: SpawnedServer;
  let caddy: CaddyProcess;
  before(async () => {
    const httpsPort = await freePort();
    server = await spawnServer(dataDir, { EDGE_SECRET, PUBLIC_URL: `https://localhost:${httpsPort}`, MAX_UPLOAD_BYTES: String(MiB) });
    caddy = await startCaddy({ httpsPort, upstream: new URL(server.url).host, dataDir, edgeSecret: EDGE_SECRET });
  });
  after(async () => {
    await caddy?.stop();
    await server?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('answers 413, and the next request is served', { todo: 'the connection closes under the unread body: Caddy answers 502, then 503 for fail_duration' }, async () => {
    // 3 MiB in 64 KiB pieces, each after the previous one was taken (and a pause: a mobile client),
    // refused three times in a row as a client retrying would be.
    const answers: string[] = [];
    for (const pauseMs of [0, 5, 20]) answers.push(await refusedUpload(caddy, pauseMs));
    for (const answer of answers) assert.match(answer, /^413 .*"code":"upload_too_large"/);
    const next = await httpsRequest(`${caddy.origin}/healthz`, caddy.ca);
    assert.equal(next.status, 200, 'the instance is still in rotation');
  });
});

function refusedUpload(caddy: CaddyProcess, pauseMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const req = https.request(`${caddy.origin}/v1/uploads`, {
      method: 'POST',
      ca: caddy.ca,
      headers: {
        'Tus-Resumable': '1.0.0',
        'X-Service-Token': SERVICE_TOKEN,
        'Upload-Length': String(3 * MiB),
        'Upload-Metadata': `user_id ${Buffer.from('slow').toString('base64')}`,
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(3 * MiB),
      },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('error', reject);
    void (async () => {
      for (let sent = 0; sent < 3 * MiB && !req.destroyed; sent += 64 * 1024) {
        if (!req.write(Buffer.alloc(64 * 1024))) await new Promise((r) => req.once('drain', r));
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
      req.end();
    })().catch(() => {});
  });
}

