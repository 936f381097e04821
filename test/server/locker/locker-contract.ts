// What @tus/server expects of any Locker, as its own suites check MemoryLocker (they are not shipped
// in the npm package, so the expectations are restated here): one suite, run against MemoryLocker
// and the PostgreSQL locker, on one instance and across two.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { ERRORS } from '@tus/server';
import type { Locker } from '@tus/utils';

export type LockerFactory = (options?: { acquireTimeoutMs?: number }) => Promise<Locker>;

const isLockTimeout = (error: unknown) => error === ERRORS.ERR_LOCK_TIMEOUT;

export function lockerContract(makeLocker: LockerFactory): void {
  test('a lock is taken and released, and the same upload can be locked again', async () => {
    const locker = await makeLocker();
    const id = randomUUID();
    const first = locker.newLock(id);
    await first.lock(new AbortController().signal, () => {});
    await first.unlock();
    const again = locker.newLock(id);
    await again.lock(new AbortController().signal, () => {});
    await again.unlock();
  });

  test('a request for a held upload asks the holder to release it, then takes it (the newer wins)', async () => {
    const locker = await makeLocker();
    const id = randomUUID();
    const signal = new AbortController().signal;
    let holderAsked = 0;
    let newerAsked = 0;
    const holder = locker.newLock(id);
    const newer = locker.newLock(id);
    await holder.lock(signal, async () => {
      holderAsked++;
      await holder.unlock();
    });
    await newer.lock(signal, () => {
      newerAsked++;
    });
    await newer.unlock();
    assert.equal(holderAsked, 1, 'the holder is asked once: it released at once');
    assert.equal(newerAsked, 0, 'nobody contended for the newer lock');
  });

  test('a holder that never releases makes the request fail with ERR_LOCK_TIMEOUT', async () => {
    const locker = await makeLocker({ acquireTimeoutMs: 400 });
    const id = randomUUID();
    const signal = new AbortController().signal;
    let asked = 0;
    const holder = locker.newLock(id);
    await holder.lock(signal, () => {
      asked++; // acknowledged, never released
    });
    await assert.rejects(locker.newLock(id).lock(signal, () => {}), isLockTimeout);
    assert.ok(asked >= 1, 'the holder was asked');
    await holder.unlock();
  });

  test('an aborted signal ends the wait with ERR_LOCK_TIMEOUT', async () => {
    const locker = await makeLocker({ acquireTimeoutMs: 60_000 });
    const id = randomUUID();
    const holder = locker.newLock(id);
    let asked!: () => void;
    const holderAsked = new Promise<void>((resolve) => (asked = resolve));
    await holder.lock(new AbortController().signal, () => asked());
    const stop = new AbortController();
    const waiting = locker.newLock(id).lock(stop.signal, () => {});
    await holderAsked; // the request is waiting now
    stop.abort();
    await assert.rejects(waiting, isLockTimeout);
    await holder.unlock();
  });

  test('releasing a lock that was never taken is a caller error', async () => {
    const locker = await makeLocker();
    await assert.rejects(locker.newLock(randomUUID()).unlock(), /unlocked lock/);
  });

  test('locks on different uploads do not wait for each other', async () => {
    const locker = await makeLocker({ acquireTimeoutMs: 60_000 });
    const signal = new AbortController().signal;
    let asked = 0;
    const locks = Array.from({ length: 5 }, () => locker.newLock(randomUUID()));
    for (const lock of locks) await lock.lock(signal, () => void asked++);
    for (const lock of locks) await lock.unlock();
    assert.equal(asked, 0, 'no holder was asked to release');
  });
}
