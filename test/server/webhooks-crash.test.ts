// Webhooks across crashes: a server killed with SIGKILL while events wait for a receiver delivers
// them after the restart (same event ids), and the start-up repair of a finish or deletion that a
// crash interrupted announces what it settled — the outbox row of a change is written in the
// change's transaction, so a crash before that transaction leaves the event to the repair.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { recordQuery } from '../helpers/records.ts';
import { openTestStorage, spawnServer, startTestServer, tempDir, SERVICE_TOKEN } from '../helpers/server.ts';
import { tusUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { Receiver, uploadIdOf } from '../helpers/webhook-receiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhooks across crashes', { timeout: 120_000 }, () => {
  test('SIGKILL with events pending: after the restart they are delivered, in order, with the ids they were first sent with', async () => {
    const receiver = new Receiver();
    receiver.status = 503;
    await receiver.listen();
    const dataDir = tempDir();
    const env = { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_MAX_SECONDS: '1' };
    let server = await spawnServer(dataDir, env);
    try {
      const service = { 'X-Service-Token': SERVICE_TOKEN };
      const key = (await tusUpload({ endpoint: server.url, headers: service, data: randomBytes(5000), metadata: { user_id: 'kim', filename: 'k.bin' } }).done).fileKey!;
      const id = uploadIdOf(key);
      const refused = await until('a refused attempt', () => receiver.requests.find((r) => r.data.upload_id === id));
      assert.equal(refused.type, 'upload.created');
      await server.kill('SIGKILL');
      receiver.status = 204;
      server = await spawnServer(dataDir, env);
      await until('both events', () => receiver.forUpload(id).length >= 2);
      const delivered = receiver.forUpload(id);
      assert.deepEqual(delivered.map((e) => e.type), ['upload.created', 'upload.finished']);
      assert.equal(delivered[0]!.id, refused.id, 'the event kept its id across the crash');
    } finally {
      await server.kill('SIGKILL');
      await receiver.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('the start-up repair announces the finishes and the deletion a crash interrupted', async () => {
    const receiver = new Receiver();
    receiver.status = 503; // nothing is accepted before the "crash"
    await receiver.listen();
    const dataDir = tempDir();
    const env = { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_MAX_SECONDS: '1' };
    let server = await startTestServer({ dataDir, env });
    try {
      const auth = { Authorization: `Bearer ${await server.token('rita')}` };
      const keys: string[] = [];
      for (const name of ['committed.txt', 'lost.txt', 'deleting.txt']) {
        keys.push((await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(300), metadata: { filename: name } }).done).fileKey!);
      }
      const [committed, lost, deleting] = keys as [string, string, string];
      await server.stop({ keepData: true });

      // The states a crash leaves (see hooks/finalize.ts). An interrupted finish never reached the
      // transaction that makes the file ready and carries upload.finished, so that event is not there.
      const interruptFinish = async (key: string) => {
        await recordQuery(dataDir, "UPDATE files SET state = 'committing' WHERE key = ?", key);
        await recordQuery(dataDir, "DELETE FROM webhook_events WHERE subject = ? AND type = 'upload.finished'", uploadIdOf(key));
      };
      await interruptFinish(committed); // after the move, before 'ready'
      await interruptFinish(lost); // and its bytes are gone from both places
      await (await openTestStorage(dataDir)).removeFile(lost);
      await recordQuery(dataDir, "UPDATE files SET state = 'deleting' WHERE key = ?", deleting); // in the middle of a deletion

      receiver.status = 204;
      server = await startTestServer({ dataDir, env });
      const outcome = async (key: string, count: number) => {
        await until(`${count} events for ${key}`, () => receiver.forUpload(uploadIdOf(key)).length >= count);
        return receiver.forUpload(uploadIdOf(key));
      };
      const c = await outcome(committed, 2);
      assert.deepEqual(c.map((e) => e.type), ['upload.created', 'upload.finished']);
      assert.equal(c[1]!.data.key, committed);
      const l = await outcome(lost, 2);
      assert.deepEqual(l.map((e) => [e.type, e.data.reason]), [['upload.created', undefined], ['upload.failed', 'lost']]);
      const d = await outcome(deleting, 3);
      assert.deepEqual(d.map((e) => e.type), ['upload.created', 'upload.finished', 'file.deleted']);
      // The repaired file is there, once.
      const list = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json();
      assert.deepEqual(list.files.map((f: { key: string }) => f.key), [committed]);
      await until('nothing pending', async () => (await server.services.repo.outbox.counts()).pending === 0);
      assert.equal(receiver.accepted().length, 7, 'no event twice');
    } finally {
      await server.stop();
      await receiver.close();
    }
  });
});
