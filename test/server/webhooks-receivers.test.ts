// Webhook receivers as operators configure them: credentials in the URL (sent as HTTP Basic, never
// logged, nor the query, the secret or a signature), a receiver that hangs without delaying
// another, and a receiver removed from WEBHOOK_URLS that is sent nothing more.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { spawnServer, startTestServer, tempDir, SERVICE_TOKEN } from '../helpers/server.ts';
import { recordCount } from '../helpers/records.ts';
import { tusUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { metric, Receiver, uploadIdOf } from '../helpers/webhook-receiver.ts';

const SECRET_BYTES = randomBytes(32).toString('base64');
const SECRET = `whsec_${SECRET_BYTES}`;
const service = { 'X-Service-Token': SERVICE_TOKEN };

describe('webhook receivers', { timeout: 120_000 }, () => {
  test('credentials in the URL go as HTTP Basic; logs name the receiver and the failure, never credentials, query, secret or signature', async () => {
    const receiver = new Receiver();
    receiver.status = 503;
    await receiver.listen();
    const url = `http://hook-user:p%40ss-PASSWORD-${randomBytes(4).toString('hex')}@127.0.0.1:${receiver.port}/hook?token=QUERYTOKEN-${randomBytes(4).toString('hex')}`;
    const password = /:(p%40ss-[^@]+)@/.exec(url)![1]!;
    const queryToken = new URL(url).searchParams.get('token')!;
    const dataDir = tempDir();
    const server = await spawnServer(dataDir, { WEBHOOK_URLS: url, WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_MAX_SECONDS: '1', LOG_LEVEL: 'debug' });
    try {
      const key = (await tusUpload({ endpoint: server.url, headers: service, data: randomBytes(100), metadata: { user_id: 'basil', filename: 'b.bin' } }).done).fileKey!;
      await until('two refused attempts', () => receiver.requests.filter((r) => r.answered === 503).length >= 2);
      receiver.status = 204;
      const id = uploadIdOf(key);
      await until('both events', () => receiver.forUpload(id).length >= 2);
      for (const r of receiver.requests) {
        assert.equal(r.authorization, `Basic ${Buffer.from(`hook-user:${decodeURIComponent(password)}`).toString('base64')}`);
        assert.equal(r.path, `/hook?token=${queryToken}`);
      }
      await until('the delivery logged', () => server.output().includes('"msg":"webhook delivered"'));
      const lines = server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const failed = lines.find((l) => l.msg === 'webhook delivery failed; will retry');
      assert.equal(failed?.receiver, `#1 http://127.0.0.1:${receiver.port}`);
      assert.equal(failed?.error, 'HTTP 503');
      const output = server.output();
      for (const [what, value] of [
        ['password', password], ['decoded password', decodeURIComponent(password)], ['query token', queryToken],
        ['secret', SECRET_BYTES], ['Basic credentials', receiver.requests[0]!.authorization!.slice(6)],
        ...receiver.requests.map((r) => ['signature', r.signature.slice(3)] as const),
      ] as const) {
        assert.equal(output.includes(value), false, `${what} in the logs`);
      }
    } finally {
      await server.kill();
      await receiver.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a receiver that hangs until the timeout holds only its own requests: another URL gets every event meanwhile', async () => {
    const hanging = new Receiver();
    hanging.hang = true;
    const healthy = new Receiver();
    await hanging.listen();
    await healthy.listen();
    // Longer than the test: the hanging receiver's requests stay in flight throughout.
    const server = await startTestServer({ env: { WEBHOOK_URLS: `${hanging.url},${healthy.url}`, WEBHOOK_SECRET: SECRET, WEBHOOK_TIMEOUT_SECONDS: '600' } });
    try {
      const auth = { Authorization: `Bearer ${await server.token('hana')}` };
      // More uploads than one URL's concurrency (8): with one pool for all URLs, the hanging
      // receiver would hold every slot and the healthy one would wait for the timeout.
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        ids.push(uploadIdOf((await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(50), metadata: { filename: `h${i}.bin` } }).done).fileKey!));
      }
      for (const id of ids) {
        await until(`both events of ${id} at the healthy receiver`, () => healthy.forUpload(id).length >= 2);
        assert.deepEqual(healthy.forUpload(id).map((e) => e.type), ['upload.created', 'upload.finished']);
      }
      await until('the hanging receiver holding its requests', () => hanging.requests.length >= 8);
      assert.equal(hanging.requests.length, 8, 'the hanging receiver has its 8 requests in flight, no more');
      // The healthy URL's last answer may still be on its way to the outbox: wait for it to count.
      await until('only the hanging receiver\'s deliveries pending', async () => (await metric(server.url, 'sl_webhook_pending')) === ids.length * 2);
    } finally {
      await server.stop();
      await hanging.close();
      await healthy.close();
    }
  });

  test('two URLs on one origin keep their own lanes: one path that hangs does not hold the other\'s events', async () => {
    const receiver = new Receiver();
    receiver.hangPath = '/slow';
    await receiver.listen();
    const origin = `http://127.0.0.1:${receiver.port}`;
    const server = await startTestServer({ env: { WEBHOOK_URLS: `${origin}/slow,${origin}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_TIMEOUT_SECONDS: '600' } });
    try {
      const auth = { Authorization: `Bearer ${await server.token('olga')}` };
      // More events than one URL's concurrency (8): connections shared per origin and capped would
      // let the hanging path take them all and queue the other path's requests behind it.
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        ids.push(uploadIdOf((await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(50), metadata: { filename: `o${i}.bin` } }).done).fileKey!));
      }
      const atHook = (id: string) => receiver.forUpload(id).filter((r) => r.path === '/hook');
      for (const id of ids) {
        await until(`both events of ${id} at /hook`, () => atHook(id).length >= 2);
        assert.deepEqual(atHook(id).map((e) => e.type), ['upload.created', 'upload.finished']);
      }
      await until('the hanging path holding its requests', () => receiver.requests.filter((r) => r.path === '/slow').length >= 8);
    } finally {
      await server.stop();
      await receiver.close();
    }
  });

  test('a URL removed from WEBHOOK_URLS: its pending deliveries are dropped at the next start, the others go on', async () => {
    const removed = new Receiver();
    removed.status = 503;
    const kept = new Receiver();
    kept.status = 503;
    await removed.listen();
    await kept.listen();
    const dataDir = tempDir();
    const env = (urls: string) => ({ WEBHOOK_URLS: urls, WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_MAX_SECONDS: '1' });
    let server = await startTestServer({ dataDir, env: env(`${removed.url},${kept.url}`) });
    try {
      const auth = { Authorization: `Bearer ${await server.token('remy')}` };
      const id = uploadIdOf((await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(50), metadata: { filename: 'r.bin' } }).done).fileKey!);
      await until('refused attempts at both', () => removed.requests.length > 0 && kept.requests.length > 0);
      await server.stop({ keepData: true });
      removed.status = 204;
      kept.status = 204;
      server = await startTestServer({ dataDir, env: env(kept.url) });
      const pendingFor = (url: string) =>
        recordCount(server, "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending' AND url = ?", url);
      assert.equal(await pendingFor(removed.url), 0, 'dropped at start-up');
      const attemptsBefore = removed.requests.length;
      await until('the kept URL gets both events', () => kept.forUpload(id).length >= 2);
      assert.deepEqual(kept.forUpload(id).map((e) => e.type), ['upload.created', 'upload.finished']);
      assert.equal(removed.requests.length, attemptsBefore);
      assert.equal(removed.accepted().length, 0);
    } finally {
      await server.stop();
      await removed.close();
      await kept.close();
    }
  });
});
