// The dispatcher while a delivery is in flight: it must wait for that request's end (which
// schedules the next look) or its poll, not look at the outbox again at once. It once re-armed a
// 0 ms timer whenever a delivery was due, and one in flight still is: ~700 wake-ups a second, each
// a SQLite query, for as long as a receiver took to answer (fixed in cf248c6).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Registry } from 'prom-client';
import { openDb } from '../../../server/db/open.ts';
import { createDispatcher } from '../../../server/webhooks/dispatcher.ts';
import { createOutbox, type Outbox } from '../../../server/db/outbox.ts';
import { tempDir } from '../../helpers/server.ts';
import { until } from '../../helpers/until.ts';
import { Receiver } from '../../helpers/webhook-receiver.ts';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

test('dispatcher: a delivery in flight is not a reason to look at the outbox again at once', async () => {
  const receiver = new Receiver();
  receiver.hang = true;
  await receiver.listen();
  const db = openDb(dir);
  let looks = 0;
  const real = createOutbox(db, [receiver.url], Date.now, () => {});
  const outbox: Outbox = {
    ...real,
    dueHeads(...args) {
      looks++;
      return real.dueHeads(...args);
    },
  };
  const dispatcher = createDispatcher({
    outbox,
    config: { urls: [receiver.url], secret: 'a-test-secret', timeoutMs: 60_000, maxBackoffMs: 60_000, giveUpMs: 3600_000 },
    now: Date.now,
    log: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  try {
    dispatcher.start();
    outbox.emit('upload.created', 'u1', { upload_id: 'u1' });
    dispatcher.wake();
    await until('the receiver holds the delivery', () => receiver.requests.length === 1);
    const before = looks;
    // The request stays unanswered throughout. A correct dispatcher looks again only on its
    // 1 s poll (at most once here); the spinning one looked hundreds of times.
    await sleep(400);
    assert.ok(looks - before <= 2, `${looks - before} looks at the outbox while one delivery was in flight`);
    assert.equal(receiver.requests.length, 1, 'and sent nothing twice');
  } finally {
    await dispatcher.stop();
    await receiver.close();
    db.close();
  }
});
