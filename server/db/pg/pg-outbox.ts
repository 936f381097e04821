// The webhook outbox on PostgreSQL (server/db/outbox.ts is its SQLite twin and explains the
// head rule: per receiver and subject, only the oldest pending delivery may go). Several instances
// run dispatchers against it: claimDue() takes due heads with FOR UPDATE SKIP LOCKED and holds
// them until a lease ends, so each delivery is sent by one instance at a time, with its event id.
import type { OutboxStore, PendingDelivery } from '../contract.ts';
import { newEventId } from '../outbox.ts';
import type { Sql } from './sql.ts';

const HEAD = `d.url = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                  WHERE p.url = d.url AND p.subject = d.subject AND p.state = 'pending' AND p.event < d.event)`;
const DELIVERY = 'd.event, d.url, d.subject, d.attempts, e.event_id, e.type, e.body, e.created_at';

export function createPgOutbox(sql: Sql, urls: readonly string[], now: () => number, onEmit: () => void): OutboxStore {
  return {
    emit: async (type, subject, data) => {
      if (urls.length === 0) return; // webhooks off: an event no one receives is not kept
      await sql.tx(async (tx) => {
        const at = now();
        const eventId = newEventId();
        const body = JSON.stringify({ type, timestamp: new Date(at).toISOString(), data });
        const { id } = (await tx.one<{ id: number }>(
          'INSERT INTO webhook_events (event_id, type, subject, body, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id',
          [eventId, type, subject, body, at]))!;
        for (const url of urls) {
          // Not due before the deliveries of its subject already waiting (a head backing off).
          await tx.run(
            `INSERT INTO webhook_deliveries (event, url, subject, state, next_attempt_at)
             VALUES ($1, $2, $3, 'pending', greatest($4::bigint, coalesce((
               SELECT max(next_attempt_at) FROM webhook_deliveries WHERE url = $2 AND subject = $3 AND state = 'pending'), 0)))`,
            [id, url, subject, at]);
        }
        tx.afterCommit(onEmit);
      });
    },
    dueHeads: (url, at, limit) =>
      sql.rows<PendingDelivery>(
        `SELECT ${DELIVERY} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event
          WHERE ${HEAD} ORDER BY d.next_attempt_at, d.event LIMIT $3`, [url, at, limit]),
    claimDue: (url, at, limit, leaseMs) =>
      sql.rows<PendingDelivery>(
        // The lock rechecks the claim on the newest row version: a delivery claimed meanwhile is skipped.
        `WITH due AS (
           SELECT d.event, d.url FROM webhook_deliveries d
            WHERE ${HEAD} AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
            ORDER BY d.next_attempt_at, d.event LIMIT $3 FOR UPDATE OF d SKIP LOCKED),
         claimed AS (
           UPDATE webhook_deliveries w SET claimed_until = $4 FROM due
            WHERE w.event = due.event AND w.url = due.url RETURNING w.*)
         SELECT ${DELIVERY} FROM claimed d JOIN webhook_events e ON e.id = d.event ORDER BY d.next_attempt_at, d.event`,
        [url, at, limit, at + leaseMs]),
    delivered: async (deliveries) => {
      if (deliveries.length === 0) return;
      await sql.run(
        `UPDATE webhook_deliveries d SET state = 'delivered', attempts = d.attempts + 1, last_error = NULL, claimed_until = NULL
           FROM unnest($1::bigint[], $2::text[]) AS x(event, url) WHERE d.event = x.event AND d.url = x.url`,
        [deliveries.map((d) => d.event), deliveries.map((d) => d.url)]);
    },
    unclaim: async (deliveries) => {
      if (deliveries.length === 0) return;
      await sql.run(
        `UPDATE webhook_deliveries d SET claimed_until = NULL
           FROM unnest($1::bigint[], $2::text[]) AS x(event, url) WHERE d.event = x.event AND d.url = x.url AND d.state = 'pending'`,
        [deliveries.map((d) => d.event), deliveries.map((d) => d.url)]);
    },
    retryLater: ({ event, url, subject }, nextAttemptAt, error) =>
      sql.tx(async (tx) => {
        await tx.run(
          'UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, claimed_until = NULL WHERE event = $3 AND url = $4',
          [nextAttemptAt, error, event, url]);
        // The head's successors wait with it (they cannot go before it anyway).
        await tx.run(
          `UPDATE webhook_deliveries SET next_attempt_at = $1
            WHERE url = $2 AND subject = $3 AND state = 'pending' AND event > $4 AND next_attempt_at < $1`,
          [nextAttemptAt, url, subject, event]);
      }),
    dead: async (event, url, error) =>
      void (await sql.run(
        "UPDATE webhook_deliveries SET state = 'dead', attempts = attempts + 1, last_error = $1, claimed_until = NULL WHERE event = $2 AND url = $3",
        [error, event, url])),
    nextDueAt: async (url) =>
      (await sql.one<{ at: number | null }>("SELECT min(next_attempt_at) AS at FROM webhook_deliveries WHERE url = $1 AND state = 'pending'", [url]))!.at,
    counts: async () =>
      (await sql.one<{ pending: number; dead: number }>(
        `SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending') AS pending,
                (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead') AS dead`))!,
    prune: (deliveredBefore, deadBefore, limit) =>
      sql.run(
        `DELETE FROM webhook_events WHERE id IN (
           SELECT e.id FROM webhook_events e
            WHERE e.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event = e.id
                              AND (d.state = 'pending' OR (d.state = 'dead' AND e.created_at >= $2)))
            LIMIT $3)`,
        [deliveredBefore, deadBefore, limit]),
    dropPendingExcept: (keep) =>
      sql.run("DELETE FROM webhook_deliveries WHERE state = 'pending' AND url <> ALL($1::text[])", [keep]),
  };
}
