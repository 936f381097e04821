// An upload's lock stays held until the write of the request that held it has settled.
//
// tus releases the lock as soon as a request's body fails (a client that cut its connection),
// while the store may still be storing what came before the cut (S3: the part under way and the
// tail as `<id>.part`, which can take seconds). The next request on the upload must not read the
// upload's offset, or write, before that: it would see an offset that is about to move, and a
// PATCH from there would write the same part as the cut one. On one instance the store itself
// makes the next request wait (hooks/observed-store.ts); with several instances only the shared
// lock reaches the other ones, so the lock is handed back once the write is done.
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import { isQuietLocker, type QuietLocker } from './quiet-locker.ts';

/** `writesIdle(id)` resolves once no write of the upload is running in this process. */
export function heldThroughWrites(locker: Locker, writesIdle: (uploadId: string) => Promise<void>): Locker & Partial<QuietLocker> {
  const wrapped: Locker & Partial<QuietLocker> = {
    newLock: (id: string): Lock => new HeldLock(locker.newLock(id), id, writesIdle),
  };
  // Background work asks for a free lock only (hooks/lock-if-free.ts): a lock held through a write is not free.
  if (isQuietLocker(locker)) wrapped.tryLock = (id, requestRelease) => locker.tryLock(id, requestRelease);
  return wrapped;
}

/** A class rather than an object of closures: a PATCH holds its lock for as long as its body streams. */
class HeldLock implements Lock {
  constructor(
    private readonly lockOf: Lock,
    private readonly id: string,
    private readonly writesIdle: (uploadId: string) => Promise<void>,
  ) {}

  lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    return this.lockOf.lock(signal, requestRelease);
  }

  async unlock(): Promise<void> {
    await this.writesIdle(this.id);
    await this.lockOf.unlock();
  }
}
