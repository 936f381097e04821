// A request that needs an upload another request holds (tus's lock, shared by every instance on
// PostgreSQL) waits a little, then answers 423 upload_locked for the client to retry.
import type { Lock, Locker } from '@tus/utils';
import { AppError } from '../server/errors.ts';

/** How long a request waits for another request on the same upload. */
const LOCK_WAIT_MS = 3000;

/** The upload's lock, held; throws upload_locked (`message`) when it stays busy. */
export async function lockUpload(locker: Locker, uploadId: string, message: string): Promise<Lock> {
  const lock = locker.newLock(uploadId);
  await lock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {}).catch(() => {
    throw new AppError('upload_locked', message);
  });
  return lock;
}
