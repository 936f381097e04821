// The one connection per instance that LISTENs for messages about its upload locks: "release this
// lock" (a newer request on another instance wants it) and "this upload is free now" (the holder
// let go). Locks themselves hold no connection; this one serves them all.
//
// A message sent while the connection is down is lost. Nothing depends on one arriving: a waiting
// request asks again at every poll, and a holder that never hears loses its lock at the lease's end.
import pg, { type ClientConfig } from 'pg';
import type { Logger } from 'pino';

export type LockMessage =
  | { kind: 'release'; upload: string; token: string; from: string }
  | { kind: 'freed'; upload: string };

export interface LockChannel {
  close(): Promise<void>;
}

const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/**
 * An instance's NOTIFY channel is this prefix and its id. LISTEN takes no parameter, so the name is
 * spliced into the statement: instance ids are plain lower-case identifiers (checked by the locker).
 */
export const CHANNEL_PREFIX = 'upload_lock_';

function channelOf(instanceId: string): string {
  return `${CHANNEL_PREFIX}${instanceId}`;
}

/** Connects and listens; resolves once LISTEN is in place, and reconnects for as long as it is open. */
export async function openLockChannel(
  config: ClientConfig,
  instanceId: string,
  onMessage: (message: LockMessage) => void,
  log: Logger,
): Promise<LockChannel> {
  const channel = channelOf(instanceId);
  let client: pg.Client | undefined;
  let closed = false;
  let retryMs = RECONNECT_FIRST_MS;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client(config);
    next.on('notification', (n) => {
      if (n.channel !== channel) return;
      const message = parseMessage(n.payload);
      if (message) onMessage(message);
      else log.warn({ channel, payload: n.payload }, 'ignored a malformed upload-lock message');
    });
    // 'error' and 'end' both fire when an established connection goes away: reconnect once. Before
    // it is established, a failure is connect()'s rejection instead.
    let established = false;
    let lost = false;
    const onLost = (err?: Error) => {
      if (!established || lost || closed) return;
      lost = true;
      log.warn({ err, channel }, 'upload-lock channel lost; reconnecting');
      next.end().catch(() => {});
      scheduleReconnect();
    };
    next.on('error', onLost);
    next.on('end', () => onLost());
    try {
      await next.connect();
      await next.query(`LISTEN ${channel}`);
    } catch (error) {
      await next.end().catch(() => {});
      throw error;
    }
    if (closed) {
      await next.end().catch(() => {}); // close() came while this reconnect was under way
      return;
    }
    established = true;
    client = next;
    retryMs = RECONNECT_FIRST_MS;
  };

  const scheduleReconnect = () => {
    client = undefined;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closed) return;
      connect().catch((err: Error) => {
        log.warn({ err, channel }, 'upload-lock channel: reconnect failed');
        retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
        scheduleReconnect();
      });
    }, retryMs);
    retryTimer.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await client?.end().catch(() => {});
    },
  };
}

function parseMessage(payload: string | undefined): LockMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? '');
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  if (typeof m.upload !== 'string') return undefined;
  if (m.kind === 'freed') return { kind: 'freed', upload: m.upload };
  if (m.kind === 'release' && typeof m.token === 'string' && typeof m.from === 'string') {
    return { kind: 'release', upload: m.upload, token: m.token, from: m.from };
  }
  return undefined;
}
