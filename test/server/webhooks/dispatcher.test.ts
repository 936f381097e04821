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
import type { OutboxStore } from '../../../server/db/contract.ts';
import { createSqliteRepository } from '../../../server/db/sqlite-repository.ts';
import { tempDir } from '../../helpers/server.ts';
import { postgresBackend, sqliteBackend } from '../db/repository-backends.ts';
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
  const real = createSqliteRepository(db, { webhookUrls: [receiver.url], now: Date.now }).outbox;
  const outbox: OutboxStore = {
    ...real,
    claimDue(...args) {
      looks++;
      return real.claimDue(...args);
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
    await dispatcher.start();
    await outbox.emit('upload.created', 'u1', { upload_id: 'u1' });
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

const scratches: string[] = [];
after(() => scratches.forEach((d) => rmSync(d, { recursive: true, force: true })));
function scratch(): string {
  const d = tempDir();
  scratches.push(d);
  return d;
}

/** A dispatcher on `outbox` sending to `url`, as the server builds it. */
function dispatcherOn(outbox: OutboxStore, url: string) {
  return createDispatcher({
    outbox,
    config: { urls: [url], secret: 'a-test-secret', timeoutMs: 60_000, maxBackoffMs: 60_000, giveUpMs: 3600_000 },
    now: Date.now,
    log: pino({ level: 'silent' }),
    registry: new Registry(),
  });
}

test('dispatcher: a delivery whose mark fails is marked at a later look, never sent again meanwhile; its successor waits for the mark', async () => {
  const receiver = new Receiver();
  await receiver.listen();
  const db = openDb(scratch());
  const real = createSqliteRepository(db, { webhookUrls: [receiver.url], now: Date.now }).outbox;
  let failures = 3;
  const outbox: OutboxStore = {
    ...real,
    async delivered(deliveries) {
      if (failures > 0) {
        failures--;
        throw new Error('disk I/O error');
      }
      return real.delivered(deliveries);
    },
  };
  const dispatcher = dispatcherOn(outbox, receiver.url);
  try {
    await dispatcher.start();
    await outbox.emit('upload.created', 'u1', { upload_id: 'u1' });
    await outbox.emit('upload.finished', 'u1', { upload_id: 'u1' });
    await outbox.emit('upload.created', 'u2', { upload_id: 'u2' });
    dispatcher.wake();
    await until('every event delivered and marked', async () => (await real.counts()).pending === 0);
    const sent = receiver.accepted().map((r) => `${r.data.upload_id} ${r.type}`);
    assert.equal(sent.length, 3, `sent: ${sent.join(', ')}`);
    assert.deepEqual(sent.filter((s) => s.startsWith('u1')), ['u1 upload.created', 'u1 upload.finished']);
  } finally {
    await dispatcher.stop();
    await receiver.close();
    db.close();
  }
});

test('dispatcher: a crash between a 2xx and its mark sends that event again after the restart (at least once), still before its successor', async () => {
  const receiver = new Receiver();
  await receiver.listen();
  const db = openDb(scratch());
  const real = createSqliteRepository(db, { webhookUrls: [receiver.url], now: Date.now }).outbox;
  // The first process never gets to write its marks (it dies first).
  const dying: OutboxStore = { ...real, delivered: async () => Promise.reject(new Error('the process died')) };
  const first = dispatcherOn(dying, receiver.url);
  await first.start();
  await real.emit('upload.created', 'u1', { upload_id: 'u1' });
  await real.emit('upload.finished', 'u1', { upload_id: 'u1' });
  first.wake();
  await until('the first event answered', () => receiver.accepted().length === 1);
  await first.stop();
  // A new process: a new repository on the same database (the first one's claims died with it).
  const restarted = createSqliteRepository(db, { webhookUrls: [receiver.url], now: Date.now }).outbox;
  const second = dispatcherOn(restarted, receiver.url);
  try {
    await second.start();
    await until('every event marked delivered', async () => (await real.counts()).pending === 0);
    const ids = receiver.accepted().map((r) => `${r.type} ${r.id}`);
    const [created, again, finished] = ids;
    assert.equal(ids.length, 3, ids.join(', '));
    assert.equal(again, created, 'the same event, with the same id');
    assert.match(finished!, /^upload\.finished /);
  } finally {
    await second.stop();
    await receiver.close();
    db.close();
  }
});

test('dispatcher: deliveries answered between two looks are marked together; each is sent once', async () => {
  const receiver = new Receiver();
  await receiver.listen();
  const db = openDb(scratch());
  const real = createSqliteRepository(db, { webhookUrls: [receiver.url], now: Date.now }).outbox;
  const marks: number[] = [];
  const outbox: OutboxStore = { ...real, delivered: (deliveries) => (marks.push(deliveries.length), real.delivered(deliveries)) };
  const dispatcher = dispatcherOn(outbox, receiver.url);
  try {
    await dispatcher.start();
    for (let i = 0; i < 40; i++) await outbox.emit('upload.created', `u${i}`, { upload_id: `u${i}` });
    dispatcher.wake();
    await until('every event marked delivered', async () => (await real.counts()).pending === 0);
    assert.equal(receiver.accepted().length, 40);
    assert.equal(new Set(receiver.accepted().map((r) => r.id)).size, 40);
    assert.equal(marks.reduce((a, b) => a + b, 0), 40);
  } finally {
    await dispatcher.stop();
    await receiver.close();
    db.close();
  }
});

for (const backend of [sqliteBackend(), postgresBackend()]) {
  test(`dispatcher (${backend.name}): a stop hands back the deliveries it cut; the next dispatcher sends them at once, not when their claim ends`, { skip: backend.skip }, async () => {
    const receiver = new Receiver();
    receiver.hang = true;
    await receiver.listen();
    await backend.start();
    const { a, b, close } = await backend.open({ webhookUrls: [receiver.url], now: Date.now });
    // a and b: two instances (PostgreSQL), or one process's repository across a restart of its
    // dispatcher (SQLite). The claim's lease here is 2 minutes, past the wait below.
    const first = dispatcherOn(a.outbox, receiver.url);
    const second = dispatcherOn(b.outbox, receiver.url);
    try {
      await first.start();
      await a.outbox.emit('upload.created', 'u1', { upload_id: 'u1' });
      first.wake();
      const cut = await until('the receiver holds the delivery', () => receiver.requests[0]);
      await first.stop();
      receiver.hang = false;
      await second.start();
      await until('the delivery sent again and marked', async () => (await b.outbox.counts()).pending === 0);
      assert.deepEqual(receiver.accepted().map((r) => r.id), [cut.id], 'the same event, with its id, once');
    } finally {
      await second.stop();
      await receiver.close();
      await close();
      await backend.stop();
    }
  });
}

for (const backend of [sqliteBackend(), postgresBackend()]) {
  test(`dispatcher (${backend.name}): a stop that begins while a look claims hands those claims back too, and sends nothing after it`, { skip: backend.skip }, async () => {
    const receiver = new Receiver();
    await receiver.listen();
    await backend.start();
    const { a, b, close } = await backend.open({ webhookUrls: [receiver.url], now: Date.now });
    // The look's claim is real (the repository's own), and held before it returns until the stop
    // has begun: the window a stop can fall into while the database answers.
    let claimed!: () => void;
    const claimMade = new Promise<void>((resolve) => (claimed = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holding: OutboxStore = {
      ...a.outbox,
      async claimDue(...args) {
        const rows = await a.outbox.claimDue(...args);
        if (rows.length > 0) {
          claimed();
          await released;
        }
        return rows;
      },
    };
    const first = dispatcherOn(holding, receiver.url);
    const second = dispatcherOn(b.outbox, receiver.url);
    try {
      await first.start();
      await a.outbox.emit('upload.created', 'u1', { upload_id: 'u1' });
      first.wake();
      await claimMade;
      const stopped = first.stop();
      release();
      await stopped;
      assert.equal(receiver.requests.length, 0, 'nothing sent once the stop began');
      // The claim's lease is 2 minutes here, past the wait below: only a claim handed back goes now.
      await second.start();
      await until('the delivery sent by the next dispatcher and marked', async () => (await b.outbox.counts()).pending === 0);
      assert.equal(receiver.accepted().length, 1, 'sent once');
    } finally {
      await second.stop();
      await receiver.close();
      await close();
      await backend.stop();
    }
  });
}
