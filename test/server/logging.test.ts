// Structured logs of a real server process: one JSON line per request (request id honoured and
// echoed, user, route, status, bytes, duration), upload lifecycle events tied to their request,
// and not one secret anywhere in the output while every kind of credential is in use.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { spawnServer, tempDir, SERVICE_TOKEN } from '../helpers/server.ts';
import { bytes, createUpload, metadataHeader, patchUpload, TUS, tusUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';

const EDGE_SECRET = 'edge-secret-for-the-log-test-0123456789';
const METRICS_TOKEN = 'metrics-token-for-the-log-test';
const service = { 'X-Service-Token': SERVICE_TOKEN };

type Line = Record<string, unknown>;

const linesOf = (output: string): Line[] => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);

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

      // A request's line is written once its last byte left: after the client had its answer.
      await until('the line of the last request', () => linesOf(server.output()).some((l) => l.msg === 'request' && l.request_id === forgedRequestId));
      const output = server.output();
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!output.includes(value), `${name} must not appear in the logs`);
      }

      const lines = linesOf(output);
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

  test('each lifecycle event carries the request id of the request that caused it, and no other', async () => {
    const dataDir = tempDir();
    const server = await spawnServer(dataDir);
    try {
      const minted = await (await fetch(`${server.url}/v1/files/generate-token?user_id=mia`, { method: 'POST', headers: service })).json();
      const auth = { Authorization: `Bearer ${minted.token as string}` };
      const data = randomBytes(1000);
      const as = (requestId: string) => ({ ...auth, 'X-Request-Id': requestId });
      const idOf = (location: string | null) => location!.split('/').pop()!;

      // Eight creations-with-upload at once, each finishing its upload in its own request.
      const together = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const requestId = `together-${i}`;
        const response = await fetch(`${server.url}/v1/uploads`, {
          method: 'POST',
          headers: { ...TUS, ...as(requestId), 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ filename: `t${i}.bin` }), 'Content-Type': 'application/offset+octet-stream' },
          body: bytes(data),
        });
        assert.equal(response.status, 201);
        return { requestId, id: idOf(response.headers.get('location')), key: ((await response.json()) as { key: string }).key };
      }));
      // Created by one request, finished by another.
      const created = await createUpload(server.url, as('create-1'), data.length, { filename: 'two.bin' });
      const finishing = await patchUpload(created.headers.get('location')!, as('finish-2'), 0, data);
      assert.equal(finishing.status, 200);
      const finishedKey = ((await finishing.json()) as { key: string }).key;
      // Its bytes do not match its declared SHA-256: the finish fails.
      const wrong = await createUpload(server.url, as('create-3'), data.length, { filename: 'wrong.bin', sha256: '0'.repeat(64) });
      assert.equal((await patchUpload(wrong.headers.get('location')!, as('finish-4'), 0, data)).status, 460);
      // Terminated by its client.
      const dropped = await createUpload(server.url, as('create-5'), 10, { filename: 'gone.bin' });
      assert.equal((await fetch(dropped.headers.get('location')!, { method: 'DELETE', headers: { ...TUS, ...as('terminate-6') } })).status, 204);
      // A file deleted by its owner.
      assert.equal((await fetch(`${server.url}/v1/files/${encodeURIComponent(together[0]!.key)}`, { method: 'DELETE', headers: as('delete-7') })).status, 200);

      const events = await until('the event of the last request', () => {
        const lines = linesOf(server.output()).filter((l) => typeof l.event === 'string');
        return lines.some((l) => l.event === 'file.deleted') && lines;
      });
      const requestOf = (event: string, field: string, value: string) => {
        const found = events.filter((l) => l.event === event && l[field] === value);
        assert.equal(found.length, 1, `one ${event} with ${field} ${value}: ${JSON.stringify(events)}`);
        return found[0]!.request_id;
      };
      for (const { requestId, id, key } of together) {
        assert.equal(requestOf('upload.created', 'upload_id', id), requestId);
        assert.equal(requestOf('upload.finished', 'key', key), requestId);
      }
      assert.equal(requestOf('upload.created', 'upload_id', idOf(created.headers.get('location'))), 'create-1');
      assert.equal(requestOf('upload.finished', 'key', finishedKey), 'finish-2');
      assert.equal(requestOf('upload.created', 'upload_id', idOf(wrong.headers.get('location'))), 'create-3');
      assert.equal(requestOf('upload.failed', 'upload_id', idOf(wrong.headers.get('location'))), 'finish-4');
      assert.equal(requestOf('upload.created', 'upload_id', idOf(dropped.headers.get('location'))), 'create-5');
      assert.equal(requestOf('upload.discarded', 'upload_id', idOf(dropped.headers.get('location'))), 'terminate-6');
      assert.equal(requestOf('file.deleted', 'key', together[0]!.key), 'delete-7');
    } finally {
      await server.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
