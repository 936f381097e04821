// Structured logs of a real server process: one JSON line per request (request id honoured and
// echoed, user, route, status, bytes, duration), upload lifecycle events tied to their request,
// and not one secret anywhere in the output while every kind of credential is in use.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { spawnServer, tempDir, SERVICE_TOKEN } from '../helpers/server.ts';
import { tusUpload } from '../helpers/tus.ts';

const EDGE_SECRET = 'edge-secret-for-the-log-test-0123456789';
const METRICS_TOKEN = 'metrics-token-for-the-log-test';
const service = { 'X-Service-Token': SERVICE_TOKEN };

type Line = Record<string, unknown>;

describe('structured logs', () => {
  test('one line per request, lifecycle events, and no secrets', async () => {
    const dataDir = tempDir();
    const server = await spawnServer(dataDir, { EDGE_SECRET, METRICS_TOKEN });
    const secrets: Record<string, string> = { SERVICE_TOKEN, EDGE_SECRET, METRICS_TOKEN };
    try {
      const minted = await (await fetch(`${server.url}/v1/files/generate-token?user_id=lena`, { method: 'POST', headers: service })).json();
      const token = minted.token as string;
      secrets.bearer = token;
      secrets.jwtSignature = token.split('.')[2]!;

      const data = randomBytes(300_000);
      const upload = await tusUpload({
        endpoint: server.url,
        headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': 'client-req-0001' },
        data,
        metadata: { filename: 'notes.txt' },
      }).done;
      const key = upload.fileKey!;

      const cookieList = await fetch(`${server.url}/v1/files/all`, { headers: { Cookie: `sl_token=${token}` } });
      assert.equal(cookieList.status, 200);

      const signed = await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: { Authorization: `Bearer ${token}` } })).json();
      secrets.sig = new URL(signed.url).searchParams.get('sig')!;
      const got = await fetch(signed.url, { headers: { 'X-Request-Id': 'download-7', Range: 'bytes=0-99' } });
      assert.equal(got.status, 206);
      assert.equal(got.headers.get('x-request-id'), 'download-7', 'the request id is echoed');
      await got.arrayBuffer();
      const bad = await fetch(signed.url.replace(/sig=[^&]+/, `sig=${'A'.repeat(43)}`));
      assert.equal(bad.status, 403);

      const batch = await (await fetch(`${server.url}/v1/files/batch-download`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ keys: [key] }),
      })).json();
      secrets.batchToken = batch.token;
      const zip = await fetch(batch.url);
      assert.equal(zip.status, 200);
      await zip.arrayBuffer();

      // Wrong credentials of every kind, and a bypass attempt with the edge header.
      assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { Authorization: 'Bearer not.a-real.token-SECRETISH' } })).status, 401);
      secrets.wrongBearer = 'not.a-real.token-SECRETISH';
      assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { 'X-Service-Token': 'wrong-service-token-SECRETISH' } })).status, 401);
      secrets.wrongService = 'wrong-service-token-SECRETISH';
      assert.equal((await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).status, 200);
      // A load balancer's liveness check: counted, not logged line by line.
      assert.equal((await fetch(`${server.url}/healthz/live`, { headers: { 'X-Request-Id': 'liveness-1' } })).status, 200);
      const forged = await fetch(`${server.url}/healthz`, { headers: { 'X-Edge-Secret': 'forged-edge-secret-SECRETISH', 'X-Forwarded-For': '198.51.100.9' } });
      assert.equal(forged.status, 200);
      secrets.forgedEdge = 'forged-edge-secret-SECRETISH';
      const forgedRequestId = forged.headers.get('x-request-id');
      assert.match(forgedRequestId!, /^[0-9a-f-]{36}$/, 'a request without an id gets one');

      await new Promise((r) => setTimeout(r, 200)); // the last lines are written after the responses
      const output = server.output();
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!output.includes(value), `${name} must not appear in the logs`);
      }

      const lines = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
      const requests = lines.filter((l) => l.msg === 'request');
      for (const line of requests) {
        for (const field of ['request_id', 'method', 'route', 'path', 'status', 'user', 'bytes_in', 'bytes_out', 'duration_ms']) {
          assert.ok(field in line, `${field} in ${JSON.stringify(line)}`);
        }
      }
      // Lines are written in order: the forged /healthz line, sent after the liveness check, is there.
      assert.ok(requests.some((l) => l.request_id === forgedRequestId));
      assert.equal(requests.some((l) => l.request_id === 'liveness-1'), false, 'a liveness check is logged at info');
      const patches = requests.filter((l) => l.method === 'PATCH' && l.request_id === 'client-req-0001');
      assert.equal(patches.length, 1, 'the upload PATCH is logged under the id its client sent');
      assert.equal(patches[0]!.user, 'lena');
      assert.equal(patches[0]!.route, '/v1/uploads/:id');
      assert.equal(patches[0]!.status, 200);
      assert.ok((patches[0]!.bytes_in as number) >= data.length, `bytes_in ${patches[0]!.bytes_in}`);

      const download = requests.find((l) => l.request_id === 'download-7')!;
      assert.equal(download.route, '/get/:encoded');
      assert.equal(download.status, 206);
      assert.equal(download.user, null, 'a link needs no account');
      assert.ok((download.bytes_out as number) >= 100);
      assert.ok(!String(download.path).includes('?'), 'no query string is logged');

      const zipLine = requests.find((l) => l.route === '/v1/files/batch-download/:token')!;
      assert.equal(zipLine.path, '/v1/files/batch-download/[token]');
      assert.ok((zipLine.bytes_out as number) > data.length);

      const forgedLine = requests.find((l) => l.request_id === forgedRequestId)!;
      assert.equal(forgedLine.via_edge, false, 'a forged edge header is not trusted');
      assert.equal(forgedLine.client, '127.0.0.1', 'nor is the X-Forwarded-For next to it');

      assert.equal(requests.filter((l) => l.status === 401).length, 2);
      const events = lines.filter((l) => typeof l.event === 'string');
      const created = events.find((l) => l.event === 'upload.created')!;
      const finished = events.find((l) => l.event === 'upload.finished')!;
      assert.equal(created.request_id, 'client-req-0001', 'lifecycle events carry the request id of their request');
      assert.equal(finished.request_id, 'client-req-0001');
      assert.equal(finished.key, key);
    } finally {
      await server.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
