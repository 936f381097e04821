// Delivers the outbox (outbox.ts) to the configured URLs: at least once, in order per upload.
//
// - Per (url, subject) one delivery at a time, oldest first: a receiver sees upload.created before
//   upload.finished before file.deleted for one upload. Different uploads go in parallel, up to
//   CONCURRENCY_PER_URL requests per URL. Each URL has its own lane, so a receiver that hangs until
//   the timeout holds only its own requests, never another receiver's events.
// - Pending deliveries to a URL removed from WEBHOOK_URLS are dropped at start-up (logged): the
//   operator took that receiver out, it is not sent another event.
// - 2xx is delivered. Anything else (status, refused connection, timeout) is retried after a
//   backoff doubling from 1 s up to WEBHOOK_RETRY_MAX_SECONDS, with jitter so a receiver coming back
//   is not hit by every sender at once. The event id stays the same: receivers de-duplicate on it.
// - An event still undelivered WEBHOOK_GIVE_UP_HOURS after it happened is marked dead (logged,
//   counted in sl_webhook_dead); later events of that upload then go out.
// - Everything lives in the database: a restart picks up whatever was pending. Stopping abandons requests
//   in flight; they stay pending, their claims handed back, and go again at the next look of any
//   instance (at least once). Only a crash leaves them claimed until the claim's lease ends.
// - A delivery answered 2xx is marked delivered at the start of the next look, together with the
//   others answered since the last one, in one transaction: one commit per delivery was three per
//   upload. Until it is marked it stays claimed, so no look sends it again and its subject's next
//   event waits (the head rule); a crash before the mark sends it again: at least once, as above.
// - Delivered events are pruned after RETENTION_MS, dead ones after DEAD_RETENTION_MS: hourly, a
//   batch per pump, so a backlog (a first start after months) never holds the event loop for long.
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WebhookConfig } from '../config.ts';
import type { DeliveryRef, OutboxStore, PendingDelivery } from '../db/contract.ts';
import { createPump } from '../pump.ts';
import { retryDelayMs } from '../retry-delay.ts';
import { createPoster } from './post.ts';
import { parseReceivers, type WebhookReceiver } from './receivers.ts';
import { signatureHeaders, webhookKey } from './signing.ts';

const CONCURRENCY_PER_URL = 8;
/** The dispatcher looks at the outbox at least this often (due retries, missed wake-ups). */
const POLL_MS = 1000;
const RETENTION_MS = 7 * 24 * 3600 * 1000;
const DEAD_RETENTION_MS = 30 * 24 * 3600 * 1000;
const PRUNE_EVERY_MS = 3600 * 1000;
/** Events deleted per pump: a backlog (a first start after a long pause) goes a batch a second. */
const PRUNE_BATCH = 200;
const USER_AGENT = 'Stream-Line-Webhooks/1';

export interface DispatcherDeps {
  outbox: OutboxStore;
  config: Pick<WebhookConfig, 'urls' | 'secret' | 'timeoutMs' | 'maxBackoffMs' | 'giveUpMs'>;
  now: () => number;
  log: Logger;
  registry: Registry;
}

export interface Dispatcher {
  start(): Promise<void>;
  /** Looks at the outbox soon (after an emit). */
  wake(): void;
  stop(): Promise<void>;
}

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { outbox, config, now, log } = deps;
  const key = webhookKey(config.secret);
  const receivers = parseReceivers(config.urls);
  const poster = createPoster({ timeoutMs: config.timeoutMs });
  const registers = [deps.registry];
  const outcomes = new Counter({
    name: 'sl_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered, failed (will be retried), dead (given up)',
    labelNames: ['outcome'],
    registers,
  });
  new Gauge({
    name: 'sl_webhook_pending',
    help: 'Webhook deliveries not yet delivered (waiting or being retried)',
    registers,
    async collect() {
      this.set((await outbox.counts()).pending);
    },
  });
  new Gauge({
    name: 'sl_webhook_dead',
    help: 'Webhook deliveries given up after WEBHOOK_GIVE_UP_HOURS (kept 30 days)',
    registers,
    async collect() {
      this.set((await outbox.counts()).dead);
    },
  });

  const inFlight = new Map<string, AbortController>();
  /** Requests in flight per URL. */
  const busy = new Map<string, number>();
  let lastPrune = 0;
  let pruneBacklog = false;
  const settling = new Set<Promise<void>>();
  /** Answered 2xx, not yet marked delivered in the outbox. */
  let received: DeliveryRef[] = [];
  /** Cut by stop() before an answer: handed back at the end of stop(). */
  const abandoned: DeliveryRef[] = [];

  async function markReceived(): Promise<void> {
    if (received.length === 0) return;
    const batch = received;
    received = [];
    try {
      await outbox.delivered(batch);
    } catch (error) {
      received = batch.concat(received); // still claimed: marked at a later look
      throw error;
    }
  }

  const headKey = (d: Pick<PendingDelivery, 'url' | 'subject'>) => `${d.url}\n${d.subject}`;

  /**
   * How long a claimed delivery is held for this dispatcher: past its request's timeout, so another
   * instance never sends it while this one still may.
   */
  const claimMs = config.timeoutMs + 60_000;

  const pump = createPump(look, (error) => {
    log.error({ err: error }, 'webhook dispatch failed');
    pump.wakeIn(POLL_MS);
  });

  async function look(): Promise<void> {
    await markReceived();
    const at = now();
    if (pruneBacklog || at - lastPrune >= PRUNE_EVERY_MS) {
      lastPrune = at;
      const pruned = await outbox.prune(at - RETENTION_MS, at - DEAD_RETENTION_MS, PRUNE_BATCH);
      pruneBacklog = pruned === PRUNE_BATCH;
      if (pruned > 0) log.debug({ pruned }, 'webhook events pruned');
    }
    for (const receiver of receivers) {
      const sending = busy.get(receiver.url) ?? 0;
      if (sending >= CONCURRENCY_PER_URL) continue;
      // Heads in flight stay claimed until they end: claim what fills the free slots.
      const free = CONCURRENCY_PER_URL - sending;
      for (const delivery of await outbox.claimDue(receiver.url, at, free, claimMs)) {
        // A stop that began while this look was claiming: the claim goes back with the cut ones
        // (stop() hands them back once this look has ended), not out as a request after the stop.
        if (pump.stopped) {
          abandoned.push({ event: delivery.event, url: delivery.url });
          continue;
        }
        if (inFlight.has(headKey(delivery))) continue;
        const attempt = send(receiver, delivery).finally(() => {
          settling.delete(attempt);
          // The next event of this upload may be due now.
          pump.wakeIn(0);
        });
        settling.add(attempt);
      }
    }
    // A delivery due now was either started above or is in flight (its end schedules a pump):
    // waiting 0 ms here would spin while it runs. Only future retries set a shorter timer.
    const dues: number[] = [];
    for (const r of receivers) {
      const due = await outbox.nextDueAt(r.url);
      if (due !== null) dues.push(due);
    }
    const wait = dues.length === 0 ? POLL_MS : Math.min(...dues) - now();
    pump.wakeIn(wait <= 0 ? POLL_MS : Math.min(POLL_MS, wait));
  }

  async function send(receiver: WebhookReceiver, delivery: PendingDelivery): Promise<void> {
    const controller = new AbortController();
    inFlight.set(headKey(delivery), controller);
    busy.set(receiver.url, (busy.get(receiver.url) ?? 0) + 1);
    const timeout = setTimeout(() => controller.abort(new Error(`no answer within ${config.timeoutMs} ms`)), config.timeoutMs);
    let failure: string;
    try {
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'User-Agent': USER_AGENT,
        ...(receiver.authorization ? { Authorization: receiver.authorization } : {}),
        ...signatureHeaders(key, delivery.event_id, Math.floor(now() / 1000), delivery.body),
      };
      const status = await poster.post(receiver.target, headers, delivery.body, controller.signal);
      if (status >= 200 && status < 300) {
        received.push({ event: delivery.event, url: delivery.url });
        outcomes.inc({ outcome: 'delivered' });
        log.debug({ event: delivery.type, event_id: delivery.event_id, receiver: receiver.label, attempts: delivery.attempts + 1 }, 'webhook delivered');
        return;
      }
      failure = `HTTP ${status}`;
    } catch (error) {
      // An abort carries its reason (timeout, stopping) as the cause; a socket error its code.
      const { cause, code, message } = error as { cause?: { message?: string }; code?: string; message: string };
      failure = cause?.message ?? code ?? message;
    } finally {
      clearTimeout(timeout);
      inFlight.delete(headKey(delivery));
      busy.set(receiver.url, busy.get(receiver.url)! - 1);
    }
    if (pump.stopped) return void abandoned.push({ event: delivery.event, url: delivery.url }); // pending as it was
    const at = now();
    const attempts = delivery.attempts + 1;
    const context = { event: delivery.type, event_id: delivery.event_id, receiver: receiver.label, attempts, error: failure };
    if (at - delivery.created_at >= config.giveUpMs) {
      await outbox.dead(delivery.event, delivery.url, failure);
      outcomes.inc({ outcome: 'dead' });
      log.error(context, 'webhook given up: undeliverable for WEBHOOK_GIVE_UP_HOURS');
      return;
    }
    const wait = retryDelayMs(attempts, config.maxBackoffMs);
    await outbox.retryLater(delivery, at + wait, failure);
    outcomes.inc({ outcome: 'failed' });
    log.warn({ ...context, retry_in_ms: wait }, 'webhook delivery failed; will retry');
  }

  return {
    async start() {
      const dropped = await outbox.dropPendingExcept(receivers.map((r) => r.url));
      if (dropped > 0) log.warn({ dropped }, 'webhook deliveries to URLs no longer in WEBHOOK_URLS dropped');
      pump.start();
    },
    wake() {
      // In 0 ms rather than now: the emits of one burst share one look.
      pump.wakeIn(0);
    },
    async stop() {
      const lookEnded = pump.stop();
      for (const controller of inFlight.values()) controller.abort(new Error('server stopping'));
      await Promise.allSettled([...settling]);
      await lookEnded;
      await markReceived().catch((error: unknown) => log.error({ err: error }, 'could not mark webhook deliveries delivered; they will be sent again'));
      await outbox.unclaim(abandoned.splice(0)).catch((error: unknown) =>
        log.warn({ err: error }, 'could not hand back the webhook deliveries cut by the stop; they go again once their claim ends'));
      poster.close();
    },
  };
}
