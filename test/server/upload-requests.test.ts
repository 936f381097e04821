// Connections that go silent, and what one token may hold: a request body with no byte for
// UPLOAD_IDLE_TIMEOUT_SECONDS is ended (bytes kept, upload resumable, connection closed); a user's
// upload requests in flight and unfinished uploads are bounded (429 with a stable code and
// Retry-After). Small limits here; the defaults are documented in docs/limits.md.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import pino from 'pino';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../helpers/problem.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { createUpload, headUpload, metadataHeader, patchUpload, TUS } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';

interface Stalled {
  socket: net.Socket;
  /** What the server sent back so far. */
  received(): string;
  closed: Promise<void>;
}

/** A PATCH that announces `declared` bytes, sends `body`, then goes silent with the connection open. */
async function stalledPatch(uploadUrl: string, auth: Record<string, string>, offset: number, declared: number, body: Buffer): Promise<Stalled> {
  const { hostname, port, pathname } = new URL(uploadUrl);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const head = [
    `PATCH ${pathname} HTTP/1.1`, `Host: ${hostname}:${port}`, ...Object.entries(auth).map(([k, v]) => `${k}: ${v}`),
    'Tus-Resumable: 1.0.0', `Upload-Offset: ${offset}`, 'Content-Type: application/offset+octet-stream', `Content-Length: ${declared}`, '', '',
  ].join('\r\n');
  socket.write(head);
  if (body.length > 0) socket.write(body);
  return { socket, received: () => text, closed };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

for (const backend of backendsUnderTest()) {
  describe(`a silent request body is ended (${backend})`, () => {
    let server: TestServer;
    const logged: Array<Record<string, unknown>> = [];
    before(async () => {
      const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
      server = await startTestServer({ storage: backend, env: { UPLOAD_IDLE_TIMEOUT_SECONDS: '1' }, log });
    });
    after(() => server.stop());

    test('no byte for UPLOAD_IDLE_TIMEOUT_SECONDS: answered with the offset, connection closed, bytes kept, upload resumes', async () => {
      const auth = { Authorization: `Bearer ${await server.token('quiet')}` };
      const data = randomBytes(100_000);
      const url = (await createUpload(server.url, auth, data.length, { filename: 'q.bin' })).headers.get('location')!;

      // Part of the body, then silence.
      const first = await stalledPatch(url, { ...auth, 'X-Request-Id': 'silent-1' }, 0, data.length, data.subarray(0, 30_000));
      await Promise.race([first.closed, until('the server to end the silent request', () => false, 30_000)]);
      assert.match(first.received(), /^HTTP\/1\.1 204 /);
      assert.match(first.received(), /\r\nupload-offset: 30000\r\n/i);
      // Operators learn which request went silent, on which upload.
      const idle = logged.filter((line) => line.event === 'upload.idle');
      assert.deepEqual(idle.map((line) => [line.request_id, line.upload_id]), [['silent-1', url.split('/').pop()]]);

      // Headers only, then silence: the same, nothing stored.
      const second = await stalledPatch(url, auth, 30_000, data.length - 30_000, Buffer.alloc(0));
      await Promise.race([second.closed, until('the server to end the headers-only request', () => false, 30_000)]);
      assert.match(second.received(), /\r\nupload-offset: 30000\r\n/i);

      const head = await headUpload(url, auth);
      assert.equal(head.headers.get('upload-offset'), '30000');
      const rest = await patchUpload(url, auth, 30_000, data.subarray(30_000));
      assert.equal(rest.status, 200, await rest.clone().text());
      const record = await rest.json();
      assert.equal(record.sha256, sha256(data));
      assert.ok((await server.readStored(record.key))!.equals(data));
    });
  });
}

describe('per-user upload limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { UPLOAD_MAX_REQUESTS_PER_USER: '3', UPLOAD_MAX_UNFINISHED_PER_USER: '4' } });
  });
  after(() => server.stop());
  const auth = async (user: string) => ({ Authorization: `Bearer ${await server.token(user)}` });

  test('upload requests in flight: the one past the limit answers 429 too_many_upload_requests; others are unaffected', async () => {
    const anna = await auth('anna');
    const urls: string[] = [];
    for (let i = 0; i < 4; i++) urls.push((await createUpload(server.url, anna, 1000)).headers.get('location')!);
    const stalled = await Promise.all(urls.slice(0, 3).map((url) => stalledPatch(url, anna, 0, 1000, Buffer.alloc(10))));
    await until('three requests in flight', () => server.services.lifecycle.requests.inFlight('anna') === 3);

    const refused = await patchUpload(urls[3]!, anna, 0, Buffer.alloc(1000));
    assert.equal(refused.headers.get('retry-after'), '5');
    await expectProblem(refused, 429, 'too_many_upload_requests');
    // A creation is an upload request too (it may carry a body).
    await expectProblem(await createUpload(server.url, anna, 10), 429, 'too_many_upload_requests');
    // Another user, and the service token acting for another user, are not held back.
    const ben = await auth('ben');
    const benUrl = (await createUpload(server.url, ben, 10)).headers.get('location')!;
    assert.equal((await patchUpload(benUrl, ben, 0, Buffer.alloc(10))).status, 200);

    for (const s of stalled) s.socket.destroy();
    await until('the stalled requests to end', () => server.services.lifecycle.requests.inFlight('anna') === 0);
    assert.equal((await patchUpload(urls[3]!, anna, 0, Buffer.alloc(1000))).status, 200);
  });

  test('unfinished uploads: the creation past the limit answers 429 too_many_unfinished_uploads; finishing or terminating one makes room', async () => {
    const carl = await auth('carl');
    const service = { 'X-Service-Token': server.serviceToken };
    const created = [
      await createUpload(server.url, carl, 100),
      await createUpload(server.url, carl, 'defer'),
      await createUpload(server.url, carl, 'defer'),
      await createUpload(server.url, carl, 100),
    ];
    assert.deepEqual(created.map((r) => r.status), [201, 201, 201, 201]);
    const urls = created.map((r) => r.headers.get('location')!);

    const refused = await createUpload(server.url, carl, 'defer');
    assert.equal(refused.headers.get('retry-after'), '60');
    await expectProblem(refused, 429, 'too_many_unfinished_uploads');
    const forCarl = await fetch(`${server.url}/v1/uploads`, {
      method: 'POST', headers: { ...TUS, ...service, 'Upload-Length': '10', 'Upload-Metadata': metadataHeader({ user_id: 'carl' }) },
    });
    await expectProblem(forCarl, 429, 'too_many_unfinished_uploads');
    // Nothing was reserved for the refused creations.
    const usage = await (await fetch(`${server.url}/v1/usage`, { headers: carl })).json();
    assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [0, 200]);
    // Another user has room of their own.
    assert.equal((await createUpload(server.url, await auth('dora'), 10)).status, 201);

    assert.equal((await patchUpload(urls[0]!, carl, 0, Buffer.alloc(100))).status, 200);
    assert.equal((await createUpload(server.url, carl, 10)).status, 201);
    await expectProblem(await createUpload(server.url, carl, 10), 429, 'too_many_unfinished_uploads');
    assert.equal((await fetch(urls[1]!, { method: 'DELETE', headers: { ...TUS, ...carl } })).status, 204);
    assert.equal((await createUpload(server.url, carl, 10)).status, 201);
  });
});
