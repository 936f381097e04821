// The outbox's SQL on a real SQLite file: heads per (url, subject) in event order, retention, counts,
// and dropping a removed URL's deliveries.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { openDb } from '../../../server/db/open.ts';
import { createOutbox, newEventId } from '../../../server/db/outbox.ts';
import { tempDir } from '../../helpers/server.ts';

const DAY = 24 * 3600 * 1000;
const A = 'http://a.example/hook';
const B = 'http://b.example/hook';
const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

function setup(name: string) {
  const db = openDb(`${dir}/${name}`);
  let clock = 1_000 * DAY;
  const outbox = createOutbox(db, [A, B], () => clock, () => {});
  const emit = (subject: string, at: number) => {
    clock = at;
    outbox.emit('upload.created', subject, { upload_id: subject });
    return (db.prepare('SELECT max(id) AS id FROM webhook_events').get() as { id: number }).id;
  };
  const events = () => (db.prepare('SELECT id FROM webhook_events ORDER BY id').all() as { id: number }[]).map((r) => r.id);
  return { db, outbox, emit, events, now: () => clock };
}

test('outbox: one head per (url, subject), the oldest pending, in event order; a dead head lets the next go', () => {
  const { db, outbox, emit, now } = setup('heads');
  const x1 = emit('x', 1_000 * DAY);
  const y1 = emit('y', 1_000 * DAY + 1);
  const x2 = emit('x', 1_000 * DAY + 2);
  const heads = (url: string, at = now()) => outbox.dueHeads(url, at, 10).map((d) => d.event);
  assert.deepEqual(heads(A), [x1, y1]);
  outbox.delivered(x1, A);
  assert.deepEqual(heads(A), [y1, x2]);
  assert.deepEqual(heads(B), [x1, y1], 'each URL has its own order');
  const retryAt = now() + 1000;
  outbox.retryLater({ event: x1, url: B, subject: 'x' }, retryAt, 'HTTP 503');
  assert.deepEqual(heads(B), [y1], 'a head backing off holds its subject back');
  // Bookkeeping that keeps the due rows few: its successors, present and future, wait as long.
  const x3 = emit('x', now());
  const waitsUntil = (event: number) => (db.prepare('SELECT next_attempt_at AS at FROM webhook_deliveries WHERE event = ? AND url = ?').get(event, B) as { at: number }).at;
  assert.deepEqual([waitsUntil(x2), waitsUntil(x3)], [retryAt, retryAt]);
  assert.deepEqual(heads(B, retryAt), [y1, x1], 'then only the head, longest waiting first');
  outbox.dead(x1, B, 'HTTP 503');
  assert.deepEqual(heads(B, retryAt), [y1, x2]);
  assert.deepEqual(outbox.counts(), { pending: 6, dead: 1 });
  assert.equal(outbox.dueHeads(A, now(), 1).length, 1, 'limit');
});

test('outbox: delivered events go after their retention, dead ones after theirs, pending ones never; in batches', () => {
  const { outbox, emit, events, now } = setup('prune');
  const t = now();
  const delivered = emit('d', t);
  const dead = emit('e', t);
  const pending = emit('p', t);
  for (const url of [A, B]) outbox.delivered(delivered, url);
  outbox.delivered(dead, A);
  outbox.dead(dead, B, 'gone');
  const young = emit('y', t + 25 * DAY);
  for (const url of [A, B]) outbox.delivered(young, url);
  const prune = (at: number, limit = 100) => outbox.prune(at - 7 * DAY, at - 30 * DAY, limit);
  assert.equal(prune(t + 7 * DAY), 0, 'not older than 7 days yet');
  assert.equal(prune(t + 8 * DAY), 1);
  assert.deepEqual(events(), [dead, pending, young]);
  assert.equal(prune(t + 29 * DAY), 0, 'dead kept 30 days, a young delivered one 7');
  assert.equal(prune(t + 31 * DAY), 1);
  assert.deepEqual(events(), [pending, young]);
  assert.equal(prune(t + 1000 * DAY), 1, 'a pending delivery keeps its event');
  assert.deepEqual(events(), [pending]);

  const many = Array.from({ length: 5 }, (_, i) => emit(`m${i}`, t + 100 * DAY));
  for (const id of many) for (const url of [A, B]) outbox.delivered(id, url);
  assert.equal(prune(t + 200 * DAY, 2), 2);
  assert.equal(prune(t + 200 * DAY, 2), 2);
  assert.equal(prune(t + 200 * DAY, 2), 1);
  assert.deepEqual(events(), [pending]);
});

test('outbox: pending deliveries to a URL no longer configured are dropped, the rest kept', () => {
  const { db, outbox, emit } = setup('drop');
  const e1 = emit('s', 1_000 * DAY);
  outbox.delivered(e1, A);
  emit('s', 1_000 * DAY + 1);
  assert.equal(outbox.dropPendingExcept([B]), 1);
  const rows = db.prepare('SELECT url, state FROM webhook_deliveries ORDER BY event, url').all();
  assert.deepEqual(rows, [{ url: A, state: 'delivered' }, { url: B, state: 'pending' }, { url: B, state: 'pending' }]);
});

test('event ids: evt_ and 32 hex digits, all distinct across refills of their random pool', () => {
  const ids = Array.from({ length: 1000 }, () => newEventId());
  for (const id of ids) assert.match(id, /^evt_[0-9a-f]{32}$/);
  assert.equal(new Set(ids).size, ids.length);
});
