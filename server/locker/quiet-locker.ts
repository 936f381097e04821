// Background work (the expiry sweep, the start-up repair) needs an upload's lock only when nobody
// holds it. tus's Locker cannot ask that: its lock() asks the holder to release (the newer request
// wins), which cancels a PATCH in flight, on whichever instance it runs.
import type { RequestRelease } from '@tus/utils';

export interface QuietLocker {
  /**
   * Takes the upload's lock if it is free, else answers undefined at once, without telling the
   * holder. `requestRelease` runs if a request asks for the lock while it is held.
   */
  tryLock(uploadId: string, requestRelease: RequestRelease): Promise<{ unlock(): Promise<void> } | undefined>;
}

export function isQuietLocker(locker: object): locker is QuietLocker {
  return typeof (locker as Partial<QuietLocker>).tryLock === 'function';
}
