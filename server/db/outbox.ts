// The webhook outbox: emit() writes an event and one delivery per URL into SQLite, on the same
// connection as every other change. Called inside the transaction of the change it reports
// (Repo.atomically), the event exists if and only if the change does: nothing is announced that
// did not happen, and nothing that happened goes unannounced, whatever crashes when.
// Delivery is the dispatcher's job (server/webhooks/dispatcher.ts); it is woken after the transaction commits.
//
// Order: per (url, subject) only the oldest pending delivery (the head) may go. The deliveries
// waiting behind a head that backs off carry its next attempt time too, so the rows that are due
// are (nearly) only heads: while a receiver is down with a large backlog, finding what to send
// costs an index lookup instead of a walk over the backlog on every pump (figures in
// bench/README.md, "Figures behind choices in the code").
// That is bookkeeping only: the head rule alone decides the order.
import { randomFillSync } from 'node:crypto';
import type { EventSink, EventType } from './events.ts';
import type { Db } from './open.ts';

/**
 * Random bytes for event ids, drawn 4 KiB at a time: a call into the CSPRNG per event (three per
 * upload) cost more than the id itself. Event ids need to be unique, not secret.
 */
const idPool = Buffer.allocUnsafe(16 * 256);
let idAt = idPool.length;

/** `evt_` and 32 hex digits: how receivers de-duplicate a delivery sent more than once. */
export function newEventId(): string {
  if (idAt === idPool.length) {
    randomFillSync(idPool);
    idAt = 0;
  }
  idAt += 16;
  return `evt_${idPool.toString('hex', idAt - 16, idAt)}`;
}

export interface PendingDelivery {
  event: number;
  url: string;
  subject: string;
  attempts: number;
  event_id: string;
  type: EventType;
  body: string;
  created_at: number;
}

/** One delivery: its event to one URL. */
export type DeliveryRef = Pick<PendingDelivery, 'event' | 'url'>;

export interface Outbox extends EventSink {
  /** For one URL: the oldest pending delivery of each subject, if it is due; oldest first. */
  dueHeads(url: string, now: number, limit: number): PendingDelivery[];
  delivered(event: number, url: string): void;
  /** delivered() for each, in one transaction (a savepoint inside one already open). */
  deliveredAll(deliveries: readonly DeliveryRef[]): void;
  retryLater(delivery: Pick<PendingDelivery, 'event' | 'url' | 'subject'>, nextAttemptAt: number, error: string): void;
  dead(event: number, url: string, error: string): void;
  /** When the next pending delivery to `url` is due (null when none is pending). */
  nextDueAt(url: string): number | null;
  counts(): { pending: number; dead: number };
  /**
   * Deletes up to `limit` events that every URL received before `deliveredBefore`, or that some URL
   * gave up on before `deadBefore` (and none still waits for). Returns how many went.
   */
  prune(deliveredBefore: number, deadBefore: number, limit: number): number;
  /** Drops pending deliveries to URLs not in `urls` (removed from WEBHOOK_URLS); returns how many. */
  dropPendingExcept(urls: readonly string[]): number;
}

export function createOutbox(db: Db, urls: readonly string[], now: () => number, onEmit: () => void): Outbox {
  const s = {
    insertEvent: db.prepare<[string, string, string, string, number]>(
      'INSERT INTO webhook_events (event_id, type, subject, body, created_at) VALUES (?, ?, ?, ?, ?)',
    ),
    // Not due before the deliveries of its subject already waiting (a head backing off). INDEXED BY
    // here and below: without statistics the planner takes the URL's whole backlog by time instead.
    insertDelivery: db.prepare<{ event: number | bigint; url: string; subject: string; at: number }>(`
      INSERT INTO webhook_deliveries (event, url, subject, state, next_attempt_at)
      VALUES (@event, @url, @subject, 'pending', max(@at, coalesce((
        SELECT max(next_attempt_at) FROM webhook_deliveries INDEXED BY webhook_deliveries_pending
        WHERE url = @url AND subject = @subject AND state = 'pending'), 0)))`),
    dueHeads: db.prepare<[string, number, number], PendingDelivery>(`
      SELECT d.event, d.url, d.subject, d.attempts, e.event_id, e.type, e.body, e.created_at
      FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event
      WHERE d.url = ? AND d.state = 'pending' AND d.next_attempt_at <= ?
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                        WHERE p.url = d.url AND p.subject = d.subject AND p.state = 'pending' AND p.event < d.event)
      ORDER BY d.next_attempt_at, d.event LIMIT ?`),
    delivered: db.prepare<[number, string]>(
      "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_error = NULL WHERE event = ? AND url = ?",
    ),
    retry: db.prepare<[number, string, number, string]>(
      'UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE event = ? AND url = ?',
    ),
    // The head's successors wait with it (they cannot go before it anyway).
    holdSuccessors: db.prepare<{ at: number; event: number; url: string; subject: string }>(`
      UPDATE webhook_deliveries INDEXED BY webhook_deliveries_pending SET next_attempt_at = @at
      WHERE url = @url AND subject = @subject AND state = 'pending' AND event > @event AND next_attempt_at < @at`),
    dead: db.prepare<[string, number, string]>(
      "UPDATE webhook_deliveries SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE event = ? AND url = ?",
    ),
    nextDue: db.prepare<[string], { at: number | null }>(
      "SELECT min(next_attempt_at) AS at FROM webhook_deliveries WHERE url = ? AND state = 'pending'",
    ),
    counts: db.prepare<[], { pending: number; dead: number }>(`
      SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending') AS pending,
             (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead') AS dead`),
    // (created_at < delivered AND none pending AND none dead) OR (created_at < dead AND none pending),
    // as one range over webhook_events_by_age (dead retention is the longer one).
    prune: db.prepare<{ delivered: number; dead: number; limit: number }>(`
      DELETE FROM webhook_events WHERE id IN (
        SELECT e.id FROM webhook_events e
        WHERE e.created_at < @delivered
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event = e.id
                          AND (d.state = 'pending' OR (d.state = 'dead' AND e.created_at >= @dead)))
        LIMIT @limit)`),
  };

  return {
    emit(type, subject, data) {
      const at = now();
      const eventId = newEventId();
      const body = JSON.stringify({ type, timestamp: new Date(at).toISOString(), data });
      const { lastInsertRowid } = s.insertEvent.run(eventId, type, subject, body, at);
      for (const url of urls) s.insertDelivery.run({ event: lastInsertRowid, url, subject, at });
      // After the surrounding transaction has committed (emit runs synchronously inside it).
      setImmediate(onEmit);
    },
    dueHeads: (url, at, limit) => s.dueHeads.all(url, at, limit),
    delivered: (event, url) => void s.delivered.run(event, url),
    deliveredAll: db.transaction((deliveries: readonly DeliveryRef[]) => {
      for (const { event, url } of deliveries) s.delivered.run(event, url);
    }),
    retryLater: db.transaction(({ event, url, subject }: Pick<PendingDelivery, 'event' | 'url' | 'subject'>, nextAttemptAt: number, error: string) => {
      s.retry.run(nextAttemptAt, error, event, url);
      s.holdSuccessors.run({ at: nextAttemptAt, event, url, subject });
    }),
    dead: (event, url, error) => void s.dead.run(error, event, url),
    nextDueAt: (url) => s.nextDue.get(url)!.at,
    counts: () => s.counts.get()!,
    prune: (deliveredBefore, deadBefore, limit) => s.prune.run({ delivered: deliveredBefore, dead: deadBefore, limit }).changes,
    dropPendingExcept: (keep) =>
      db.prepare(`DELETE FROM webhook_deliveries WHERE state = 'pending' AND url NOT IN (${keep.map(() => '?').join(', ')})`).run(...keep).changes,
  };
}
