// A tus Locker shared by every instance on one PostgreSQL database, with MemoryLocker's semantics
// across processes: a request for an upload that another request holds asks the holder to release
// it (its requestRelease runs, wherever it is) and takes the lock as soon as it is free; the newer
// request wins. A lock is a leased row (upload_locks): the holder's instance renews all its leases
// in one statement per heartbeat, so the lock of an instance that died frees itself when its lease
// ends. No connection is held per lock: queries go through the caller's small pool, and one LISTEN
// connection per instance carries release requests (see docs/design-several-instances.md).
import { randomBytes, randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ERRORS } from '@tus/server';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import type { ClientConfig, Pool } from 'pg';
import type { Logger } from 'pino';
import { openLockChannel, type LockMessage } from './lock-channel.ts';
import type { QuietLocker } from './quiet-locker.ts';
import { askHolderToRelease, claimLock, releaseLock, renewLocks, sweepExpiredLocks } from './pg-lock-sql.ts';

export interface PgLockerOptions {
  /** Shared with the instance's other queries; the locker borrows a connection per statement only. */
  pool: Pool;
  /** Settings of the LISTEN connection; by default the pool's own. */
  listenerConfig?: ClientConfig;
  log: Logger;
  /** Names this instance's NOTIFY channel: lower-case letters, digits, `_`. Random by default. */
  instanceId?: string;
  /** How long a lock outlives its holder's last renewal. */
  leaseMs?: number;
  /** How often held leases are renewed; at most a third of the lease, so two missed beats are survived. */
  heartbeatMs?: number;
  /** How often a waiting request checks again and repeats its release request. */
  pollMs?: number;
  /** A request that cannot get the lock in this long fails with tus's ERR_LOCK_TIMEOUT (as MemoryLocker). */
  acquireTimeoutMs?: number;
}

export const PG_LOCKER_DEFAULTS = { leaseMs: 10_000, heartbeatMs: 2_500, pollMs: 500, acquireTimeoutMs: 30_000 } as const;

export interface PgLocker extends Locker, QuietLocker {
  readonly instanceId: string;
  /** Releases every lock this instance holds and closes the LISTEN connection; the pool stays the caller's. */
  close(): Promise<void>;
}

interface Held {
  uploadId: string;
  token: string;
  requestRelease: RequestRelease;
  /** Instances whose requests asked for this lock: told when it is free. */
  askedBy: Set<string>;
  /** performance.now() until which the lease is known to be ours (counted from before the renewal was sent). */
  confirmedUntil: number;
}

export async function createPgLocker(options: PgLockerOptions): Promise<PgLocker> {
  const { pool, log } = options;
  const leaseMs = options.leaseMs ?? PG_LOCKER_DEFAULTS.leaseMs;
  const heartbeatMs = options.heartbeatMs ?? PG_LOCKER_DEFAULTS.heartbeatMs;
  const pollMs = options.pollMs ?? PG_LOCKER_DEFAULTS.pollMs;
  const acquireTimeoutMs = options.acquireTimeoutMs ?? PG_LOCKER_DEFAULTS.acquireTimeoutMs;
  const instanceId = options.instanceId ?? randomBytes(8).toString('hex');
  if (!/^[a-z0-9_]{1,40}$/.test(instanceId)) throw new Error(`instanceId must match [a-z0-9_]{1,40}: ${instanceId}`);
  if (!(pollMs > 0 && heartbeatMs > 0 && acquireTimeoutMs > 0)) throw new Error('pollMs, heartbeatMs and acquireTimeoutMs must be positive');
  if (heartbeatMs * 3 > leaseMs) throw new Error(`heartbeatMs (${heartbeatMs}) must be at most a third of leaseMs (${leaseMs})`);

  const held = new Map<string, Held>(); // by token
  /**
   * Locks released here whose row could not be deleted (the database was away): deleted again at
   * each heartbeat, when the upload is asked for, and at close, so the upload is free as soon as
   * the database is back instead of when the lease ends.
   */
  const unreleased = new Map<string, string>(); // upload id → token
  const waiting = new Map<string, Set<() => void>>(); // by upload id: wakes waiting requests
  const closing = new AbortController();
  // Every waiting lock() listens to it until its wait ends (removed in acquire's finally): a
  // thousand concurrent waits are a thousand listeners, not a leak.
  setMaxListeners(0, closing.signal);

  const askRelease = (lock: Held) => {
    Promise.resolve()
      .then(() => lock.requestRelease())
      .catch((err: unknown) => log.warn({ err, upload_id: lock.uploadId }, 'requestRelease of an upload lock failed'));
  };
  const wake = (uploadId: string) => waiting.get(uploadId)?.forEach((fn) => fn());
  /** Deletes the row of a lock released while the database was away; throws while it still is. */
  const deleteUnreleased = async (uploadId: string) => {
    const token = unreleased.get(uploadId);
    if (token === undefined) return;
    await releaseLock(pool, uploadId, token, []);
    if (unreleased.get(uploadId) === token) unreleased.delete(uploadId);
    wake(uploadId);
  };
  const onMessage = (message: LockMessage) => {
    if (message.kind === 'freed') return wake(message.upload);
    const lock = held.get(message.token);
    if (unreleased.get(message.upload) === message.token) return void deleteUnreleased(message.upload).catch(() => {});
    if (!lock || lock.uploadId !== message.upload) return; // released meanwhile: the asker will find it free
    lock.askedBy.add(message.from);
    askRelease(lock);
  };
  /** The lease may have passed to someone else: the holder must stop writing, as if asked to release. */
  const lose = (lock: Held, why: string) => {
    if (!held.delete(lock.token)) return;
    log.warn({ upload_id: lock.uploadId, instance_id: instanceId }, `upload lock lost: ${why}`);
    askRelease(lock);
  };

  const channel = await openLockChannel(options.listenerConfig ?? pool.options, instanceId, onMessage, log);

  let renewing = false;
  let clearing = false;
  let ticks = 0;
  const sweepEvery = Math.max(1, Math.round(60_000 / heartbeatMs));
  const heartbeat = setInterval(async () => {
    // One round at a time: while the database is away each attempt waits for the pool's timeout.
    if (!clearing && unreleased.size > 0) {
      clearing = true;
      void Promise.allSettled([...unreleased.keys()].map(deleteUnreleased)).finally(() => (clearing = false));
    }
    if (++ticks % sweepEvery === 0) sweepExpiredLocks(pool, leaseMs).catch((err: unknown) => log.warn({ err }, 'sweeping expired upload locks failed'));
    if (!renewing && held.size > 0) {
      renewing = true;
      const batch = [...held.values()];
      const sentAt = performance.now();
      try {
        const renewed = await renewLocks(pool, batch, leaseMs);
        for (const lock of batch) {
          if (renewed.has(lock.token)) lock.confirmedUntil = sentAt + leaseMs;
          else if (held.has(lock.token)) lose(lock, 'its lease ran out and another request took it');
        }
      } catch (err) {
        log.warn({ err }, 'renewing upload locks failed');
      } finally {
        renewing = false;
      }
    }
    const now = performance.now();
    for (const lock of held.values()) if (now > lock.confirmedUntil) lose(lock, 'its lease could not be renewed in time');
  }, heartbeatMs);
  heartbeat.unref();

  const release = async (lock: Held) => {
    if (!held.delete(lock.token)) return; // released already, or lost (then the row is someone else's)
    const others = [...lock.askedBy].filter((id) => id !== instanceId);
    try {
      await releaseLock(pool, lock.uploadId, lock.token, others);
    } catch (err) {
      // Not the caller's failure: deleted again once the database answers, or its lease ends.
      unreleased.set(lock.uploadId, lock.token);
      log.warn({ err, upload_id: lock.uploadId }, 'releasing an upload lock failed; it is released again once the database answers');
    }
    wake(lock.uploadId);
  };

  const acquire = async (uploadId: string, signal: AbortSignal, requestRelease: RequestRelease): Promise<Held> => {
    // One signal for the three ways a wait ends, unhooked in `finally` (closing.signal lives as long
    // as the locker: nothing may stay attached to it per request).
    const ending = new AbortController();
    const end = () => ending.abort();
    const stop = ending.signal;
    if (signal.aborted || closing.signal.aborted) end();
    signal.addEventListener('abort', end, { once: true });
    closing.signal.addEventListener('abort', end, { once: true });
    const deadline = setTimeout(end, acquireTimeoutMs);
    const token = randomUUID();
    let woken = false;
    let interrupt: (() => void) | undefined;
    const onFree = () => {
      woken = true;
      interrupt?.();
    };
    const wakers = waiting.get(uploadId) ?? new Set();
    waiting.set(uploadId, wakers.add(onFree));
    try {
      for (;;) {
        if (stop.aborted) throw ERRORS.ERR_LOCK_TIMEOUT;
        woken = false;
        if (unreleased.has(uploadId)) await deleteUnreleased(uploadId);
        const sentAt = performance.now();
        if (await claimLock(pool, uploadId, instanceId, token, leaseMs)) {
          const lock: Held = { uploadId, token, requestRelease, askedBy: new Set(), confirmedUntil: sentAt + leaseMs };
          held.set(token, lock);
          if (closing.signal.aborted) {
            await release(lock); // the locker is closing: give it straight back
            throw ERRORS.ERR_LOCK_TIMEOUT;
          }
          // Kept even if the caller's wait ran out while the claim was on its way (a slow
          // database): it was free, as MemoryLocker hands over a free lock at once.
          return lock;
        }
        // Asked on every round, as MemoryLocker does: a request lost while the holder's channel was
        // down is repeated. Nobody to ask means it was just freed: claim again at once.
        if (!(await askHolderToRelease(pool, uploadId, instanceId))) continue;
        if (!woken) await sleep(pollMs, stop, (fn) => (interrupt = fn));
      }
    } finally {
      clearTimeout(deadline);
      signal.removeEventListener('abort', end);
      closing.signal.removeEventListener('abort', end);
      wakers.delete(onFree);
      if (wakers.size === 0) waiting.delete(uploadId);
    }
  };

  return {
    instanceId,
    newLock(id: string): Lock {
      let current: Held | undefined;
      let acquired = false;
      return {
        async lock(signal, requestRelease) {
          current = await acquire(id, signal, requestRelease);
          acquired = true;
        },
        // Idempotent once acquired: tus and this server's hooks may both release after a cancel.
        async unlock() {
          if (!acquired) throw new Error('Releasing an unlocked lock!'); // as MemoryLocker: a caller bug
          const lock = current;
          current = undefined;
          if (lock) await release(lock);
        },
      };
    },
    async tryLock(id, requestRelease) {
      if (closing.signal.aborted) return undefined;
      const token = randomUUID();
      const sentAt = performance.now();
      if (!(await claimLock(pool, id, instanceId, token, leaseMs))) return undefined;
      const lock: Held = { uploadId: id, token, requestRelease, askedBy: new Set(), confirmedUntil: sentAt + leaseMs };
      held.set(token, lock);
      return { unlock: () => release(lock) };
    },
    async close() {
      closing.abort();
      clearInterval(heartbeat);
      await Promise.all([...held.values()].map(release));
      await Promise.all([...unreleased.keys()].map((uploadId) => deleteUnreleased(uploadId).catch(() => {})));
      await channel.close();
    },
  };
}

/** Resolves after `ms`, or early when aborted or interrupted. */
function sleep(ms: number, signal: AbortSignal, onInterruptible: (interrupt: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    onInterruptible(done);
  });
}
