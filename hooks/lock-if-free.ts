// The lock of an upload that no request is working on, for background work (expiry, start-up
// repair): such work waits for the next round instead of cancelling a request, on any instance.
import type { Locker } from '@tus/utils';
import { isQuietLocker } from '../server/locker/quiet-locker.ts';
import type { UploadRequests } from '../server/upload-requests.ts';

/** How long the in-process locker is given to hand over a free lock. */
const LOCK_WAIT_MS = 100;

export type LockIfFree = (uploadId: string) => Promise<{ unlock(): Promise<void> } | undefined>;

export function lockIfFree(locker: Locker, requests: UploadRequests): LockIfFree {
  // The shared locker (PostgreSQL) sees every instance's holders: a PATCH streaming or silent on any
  // instance, a finish between its move and its record.
  if (isQuietLocker(locker)) return (uploadId) => locker.tryLock(uploadId, () => {});
  // tus's MemoryLocker serves one process: its holders are this process's requests. Checked in the
  // same turn of the event loop as the lock request below: a PATCH that is admitted later waits
  // for this lock instead of being cancelled by it. A finish holds its lock without giving it up
  // when asked, so the short wait ends with nothing.
  return async (uploadId) => {
    if (requests.isReceiving(uploadId)) return undefined;
    const lock = locker.newLock(uploadId);
    try {
      await lock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {});
    } catch {
      return undefined;
    }
    return lock;
  };
}
