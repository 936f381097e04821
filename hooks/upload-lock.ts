// A request that needs an upload another request holds (tus's lock, shared by every instance on
// PostgreSQL) waits a little, then answers 423 upload_locked for the client to retry.
import { ERRORS } from '@tus/server';
import type { Lock, Locker } from '@tus/utils';
import { AppError } from '../server/errors.ts';

/** How long a request waits for another request on the same upload. */
const LOCK_WAIT_MS = 3000;

/**
 * The upload's lock, held; throws upload_locked (`message`) when it stays busy for `waitMs`. Any
 * other failure (the database behind the locker cannot be reached) is thrown as it is.
 */
export async function lockUpload(locker: Locker, uploadId: string, message: string, waitMs = LOCK_WAIT_MS): Promise<Lock> {
  const lock = locker.newLock(uploadId);
  await lock.lock(AbortSignal.timeout(waitMs), () => {}).catch((error: unknown) => {
    throw error === ERRORS.ERR_LOCK_TIMEOUT ? new AppError('upload_locked', message) : error;
  });
  return lock;
}
