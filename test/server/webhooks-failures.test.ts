// upload.failed: every way an unfinished upload ends without a file is announced once, after its
// upload.created, with its reason — the client's DELETE, content refused by its first bytes, expiry.
// A creation refused outright created nothing, so it announces nothing. (Checksum mismatch and the
// start-up repair's 'lost' are in webhooks.test.ts and webhooks-crash.test.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { startTestServer } from '../helpers/server.ts';
import { createUpload, patchUpload, TUS } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { Receiver } from '../helpers/webhook-receiver.ts';

// A PE executable starts with 'MZ' (file-type: application/x-msdownload).
const exe = Buffer.concat([Buffer.from('MZ', 'latin1'), Buffer.alloc(5000)]);

describe('webhooks: failed uploads', () => {
  test('terminated, refused by content, expired: upload.created then upload.failed with the reason; a refused creation: nothing', async () => {
    const receiver = new Receiver();
    await receiver.listen();
    let offset = 0;
    const server = await startTestServer({
      now: () => Date.now() + offset,
      env: {
        WEBHOOK_URLS: receiver.url,
        WEBHOOK_SECRET: randomBytes(24).toString('hex'),
        DENIED_TYPES: 'application/x-msdownload,.exe',
        UPLOAD_EXPIRY_SECONDS: '60',
      },
    });
    try {
      const auth = { Authorization: `Bearer ${await server.token('fay', 7200)}` };
      const create = async (length: number | 'defer', filename: string) => {
        const res = await createUpload(server.url, auth, length, { filename, folder: 'f' });
        assert.equal(res.status, 201, filename);
        const url = res.headers.get('location')!;
        return { url, id: url.split('/').pop()! };
      };
      const failure = async (id: string) => {
        await until(`upload.failed for ${id}`, () => receiver.forUpload(id).length >= 2);
        const events = receiver.forUpload(id);
        assert.deepEqual(events.map((e) => e.type), ['upload.created', 'upload.failed']);
        assert.deepEqual(Object.keys(events[1]!.data).sort(), ['filename', 'folder', 'reason', 'upload_id', 'user_id']);
        assert.equal(events[1]!.data.user_id, 'fay');
        return events;
      };

      const terminated = await create(10, 'gone.txt');
      assert.equal((await fetch(terminated.url, { method: 'DELETE', headers: { ...TUS, ...auth } })).status, 204);
      assert.equal((await failure(terminated.id))[1]!.data.reason, 'terminated');

      // Deferred length: upload.created says size null; the disguised content is refused by its head.
      const disguised = await create('defer', 'holiday.jpg');
      assert.equal((await patchUpload(disguised.url, auth, 0, exe)).status, 415);
      const [created, refused] = await failure(disguised.id);
      assert.equal(created!.data.size, null);
      assert.equal(refused!.data.reason, 'type_not_allowed');
      assert.equal(refused!.data.filename, 'holiday.jpg');

      const idle = await create(10, 'idle.txt');
      // Idle past UPLOAD_EXPIRY_SECONDS, then swept here; the housekeeping timer may sweep it first,
      // so the event, not this call's count, says it expired.
      offset += 61_000;
      await server.services.lifecycle.expire();
      assert.equal((await failure(idle.id))[1]!.data.reason, 'expired');

      // Refused at creation (a denied extension): no upload ever existed, so no event.
      assert.equal((await createUpload(server.url, auth, 10, { filename: 'setup.exe' })).status, 415);
      const marker = await create(10, 'marker.txt');
      await until('the marker upload announced', () => receiver.forUpload(marker.id).length >= 1);
      await until('nothing pending', async () => (await server.services.repo.outbox.counts()).pending === 0);
      assert.equal(receiver.accepted().length, 7, 'three created + three failed + the marker');
      assert.equal(receiver.accepted().filter((e) => e.data.filename === 'setup.exe').length, 0);
    } finally {
      await server.stop();
      await receiver.close();
    }
  });
});
