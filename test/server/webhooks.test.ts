// Webhooks end to end: real uploads through the real server, events POSTed to a real receiving
// node:http server, signatures checked with the Standard Webhooks reference verifier
// (`standardwebhooks`). Receivers that fail, vanish and come back; a server restarted with events
// still pending; two URLs; an event given up after WEBHOOK_GIVE_UP_HOURS.
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { recordCount } from '../helpers/records.ts';
import { tusUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { metric as metricAt, Receiver, uploadIdOf } from '../helpers/webhook-receiver.ts';

const metric = (server: TestServer, name: string) => metricAt(server.url, name);

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhooks', () => {
  const receiver = new Receiver();
  const second = new Receiver();
  let server: TestServer;
  let auth: Record<string, string>;
  const env = () => ({ WEBHOOK_URLS: `${receiver.url}, ${second.url}`, WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_MAX_SECONDS: '1' });
  before(async () => {
    await receiver.listen();
    await second.listen();
    server = await startTestServer({ env: env() });
    auth = { Authorization: `Bearer ${await server.token('wendy')}` };
  });
  after(async () => {
    await server?.stop();
    await receiver.close().catch(() => {});
    await second.close().catch(() => {});
  });

  const upload = async (data: Buffer, filename: string, sha256?: string) =>
    (await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename, folder: 'hooks', ...(sha256 ? { sha256 } : {}) } }).done).fileKey!;

  test('upload.created, upload.finished and file.deleted arrive in order, signed, with their fields, at every URL', async () => {
    const data = Buffer.from('hello webhooks');
    const key = await upload(data, 'hello.txt');
    const id = uploadIdOf(key);
    assert.equal((await fetch(`${server.url}/v1/files/${key}`, { method: 'DELETE', headers: auth })).status, 200);
    for (const r of [receiver, second]) {
      await until('three events', () => r.forUpload(id).length >= 3);
      const events = r.forUpload(id);
      assert.deepEqual(events.map((e) => e.type), ['upload.created', 'upload.finished', 'file.deleted']);
      const [created, finished, deleted] = events;
      assert.deepEqual(created!.data, { upload_id: id, user_id: 'wendy', filename: 'hello.txt', folder: 'hooks', content_type: 'text/plain', size: data.length });
      assert.deepEqual(finished!.data, {
        upload_id: id, key, user_id: 'wendy', folder: 'hooks', filename: 'hello.txt', size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'), content_type: 'text/plain', detected_type: null, category: 'document',
      });
      assert.deepEqual(deleted!.data, { upload_id: id, key, user_id: 'wendy' });
    }
    // Both URLs got the same events (same ids), each signed.
    assert.deepEqual(receiver.forUpload(id).map((e) => e.id), second.forUpload(id).map((e) => e.id));
    const verifier = new Webhook(SECRET);
    for (const e of receiver.forUpload(id)) {
      const headers = { 'webhook-id': e.id, 'webhook-timestamp': e.timestamp, 'webhook-signature': e.signature };
      const payload = verifier.verify(e.raw, headers) as { type: string };
      assert.equal(payload.type, e.type);
      assert.match(e.id, /^evt_[0-9a-f]{32}$/);
      // A changed body, another event's id, or an old timestamp: refused.
      assert.throws(() => verifier.verify(e.raw.replace('wendy', 'mallory'), headers));
      assert.throws(() => verifier.verify(e.raw, { ...headers, 'webhook-id': 'evt_other' }));
      const old = String(Number(e.timestamp) - 3600);
      assert.throws(() => verifier.verify(e.raw, { ...headers, 'webhook-timestamp': old }));
      assert.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(e.raw, headers), 'another secret');
    }
  });

  test('a checksum mismatch is upload.failed with its reason, and nothing else follows', async () => {
    const wrong = '0'.repeat(64);
    const error = await upload(Buffer.from('not what was declared'), 'bad.txt', wrong).then(() => null, (e: { originalResponse?: { getStatus(): number } }) => e);
    assert.equal(error?.originalResponse?.getStatus(), 460);
    const failed = await until('upload.failed', () => receiver.accepted().find((e) => e.type === 'upload.failed' && e.data.filename === 'bad.txt'));
    assert.equal(failed.data.reason, 'checksum_mismatch');
    assert.equal(failed.data.user_id, 'wendy');
    const events = receiver.forUpload(String(failed.data.upload_id)).map((e) => e.type);
    assert.deepEqual(events, ['upload.created', 'upload.failed']);
  });

  test('a receiver failing, then gone, then back: nothing lost, order kept per upload, the same id on every retry', async () => {
    receiver.status = 503;
    const before = receiver.requests.length;
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push(await upload(randomBytes(1000 + i), `retry-${i}.bin`));
    await until('failed attempts', () => receiver.requests.slice(before).filter((r) => r.answered === 503).length >= 3);
    assert.ok((await metric(server, 'sl_webhook_deliveries_total{outcome="failed"}')) >= 3, 'failures are counted');
    assert.ok((await metric(server, 'sl_webhook_pending')) >= 6, 'and pending');
    // Gone: connection refused, until an attempt has met the closed port.
    await receiver.close();
    const failedBefore = await metric(server, 'sl_webhook_deliveries_total{outcome="failed"}');
    await until('an attempt while the receiver is gone', async () => (await metric(server, 'sl_webhook_deliveries_total{outcome="failed"}')) > failedBefore);
    receiver.status = 204;
    await receiver.listen();
    for (const key of keys) {
      const id = uploadIdOf(key);
      await until(`events of ${id}`, () => receiver.forUpload(id).length >= 2);
      assert.deepEqual(receiver.forUpload(id).map((e) => e.type), ['upload.created', 'upload.finished']);
      // Every attempt of one event carried the same id; the failed ones came first.
      const attempts = receiver.requests.filter((r) => r.data.upload_id === id && r.type === 'upload.created');
      assert.ok(attempts.length >= 2, 'it was retried');
      assert.equal(new Set(attempts.map((a) => a.id)).size, 1);
      // Never finished before created, in any attempt.
      const firstFinished = receiver.requests.findIndex((r) => r.data.upload_id === id && r.type === 'upload.finished');
      const lastCreatedFailure = receiver.requests.findLastIndex((r) => r.data.upload_id === id && r.type === 'upload.created' && r.answered !== 204);
      assert.ok(firstFinished > lastCreatedFailure, 'upload.finished was not sent while upload.created was undelivered');
    }
    await until('nothing pending', async () => (await metric(server, 'sl_webhook_pending')) === 0);
  });

  test('events pending when the server stops are delivered after it starts again', async () => {
    receiver.status = 500;
    second.status = 500;
    const key = await upload(Buffer.from('across a restart'), 'restart.txt');
    const id = uploadIdOf(key);
    await until('a failed attempt', () => receiver.requests.some((r) => r.data.upload_id === id && r.answered === 500));
    assert.equal(receiver.forUpload(id).length, 0);
    await server.stop({ keepData: true });
    receiver.status = 204;
    second.status = 204;
    server = await startTestServer({ dataDir: server.dataDir, env: env() });
    for (const r of [receiver, second]) {
      await until('both events after the restart', () => r.forUpload(id).length >= 2);
      assert.deepEqual(r.forUpload(id).map((e) => e.type), ['upload.created', 'upload.finished']);
    }
  });
});

describe('webhooks: giving up', () => {
  test('an event undeliverable for WEBHOOK_GIVE_UP_HOURS is marked dead, logged and counted; later events of the upload still go', async () => {
    const receiver = new Receiver();
    receiver.status = 503;
    await receiver.listen();
    let clock = Date.now();
    const server = await startTestServer({
      dataDir: tempDir(),
      now: () => clock,
      env: { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: 'a-plain-secret-of-at-least-32-characters', WEBHOOK_RETRY_MAX_SECONDS: '1', WEBHOOK_GIVE_UP_HOURS: '1' },
    });
    try {
      const auth = { Authorization: `Bearer ${await server.token('gus', 400 * 86400)}` };
      const key = (await tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from('doomed'), metadata: { filename: 'doomed.txt' } }).done).fileKey!;
      const id = /\/([0-9a-f]{32})\.txt$/.exec(key)![1]!;
      await until('a failed attempt', () => receiver.requests.some((r) => r.data.upload_id === id));
      assert.equal(await metric(server, 'sl_webhook_dead'), 0);
      clock += 61 * 60 * 1000;
      await until('both events dead', async () => (await metric(server, 'sl_webhook_dead')) === 2);
      assert.ok((await metric(server, 'sl_webhook_deliveries_total{outcome="dead"}')) === 2);
      receiver.status = 200;
      assert.equal((await fetch(`${server.url}/v1/files/${key}`, { method: 'DELETE', headers: auth })).status, 200);
      const deleted = await until('file.deleted', () => receiver.forUpload(id).find((e) => e.type === 'file.deleted'));
      assert.equal(deleted.data.key, key);
      assert.deepEqual(receiver.forUpload(id).map((e) => e.type), ['file.deleted'], 'the dead ones were not sent again');
      // A plain secret signs with its UTF-8 bytes (the verifier's "raw" format).
      const verifier = new Webhook('a-plain-secret-of-at-least-32-characters', { format: 'raw' });
      const signed = { 'webhook-id': deleted.id, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': '' };
      assert.throws(() => verifier.verify(deleted.raw, signed), 'an empty signature is refused');
      // (Its timestamp is the injected clock's, an hour ahead: check the MAC itself.)
      const mac = createHmac('sha256', Buffer.from('a-plain-secret-of-at-least-32-characters', 'utf8')).update(`${deleted.id}.${deleted.timestamp}.${deleted.raw}`).digest('base64');
      assert.equal(deleted.signature, `v1,${mac}`);
      // Retention: delivered events go after 7 days, dead ones after 30.
      const events = () => recordCount(server, 'SELECT count(*) AS n FROM webhook_events');
      assert.equal(await events(), 3);
      clock += 8 * 24 * 3600 * 1000;
      await until('the delivered event pruned', async () => (await events()) === 2);
      clock += 23 * 24 * 3600 * 1000;
      await until('the dead ones pruned', async () => (await events()) === 0);
    } finally {
      await server.stop();
      await receiver.close();
    }
  });
});
