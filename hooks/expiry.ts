// Expiry step: unfinished uploads idle for UPLOAD_EXPIRY_SECONDS are removed with their
// reservations, at start-up and periodically. An upload that is receiving bytes right now is
// skipped until the next round, however long ago its request began: asking tus's locker for its
// lock would make tus cancel that request (a lock request asks the holder to release it), which
// cut a PATCH that streamed for longer than the expiry.
import type { Locker } from '@tus/utils';
import type { UploadRequests } from '../server/upload-requests.ts';
import type { HookDeps } from './deps.ts';
import { discardUpload } from './discard.ts';
import type { Digests } from './sha256.ts';

const BATCH = 100;
const LOCK_WAIT_MS = 100;

export async function expireIdleUploads(deps: HookDeps, digests: Digests, locker: Locker, requests: UploadRequests): Promise<number> {
  const cutoff = deps.now() - deps.uploadExpirySeconds * 1000;
  let expired = 0;
  const skipped = new Set<string>();
  for (;;) {
    const rows = (await deps.repo.idleUploads(cutoff, BATCH + skipped.size)).filter((r) => !skipped.has(r.id));
    if (rows.length === 0) return expired;
    for (const row of rows) {
      // Checked in the same turn of the event loop as the lock request below: a PATCH that is
      // admitted later waits for this lock instead of being cancelled by it.
      if (requests.isReceiving(row.id)) {
        skipped.add(row.id);
        continue;
      }
      const lock = locker.newLock(row.id);
      const signal = AbortSignal.timeout(LOCK_WAIT_MS);
      try {
        await lock.lock(signal, () => {});
      } catch {
        skipped.add(row.id);
        continue;
      }
      try {
        // Re-read under the lock: a PATCH may have touched it since the query.
        const current = await deps.repo.getUpload(row.id);
        if (current && current.touched_at < cutoff) {
          await discardUpload(deps, digests, row.id, 'expired');
          deps.log.info({ event: 'upload.expired', upload_id: row.id, user_id: row.user_id }, 'upload expired');
          expired++;
        } else skipped.add(row.id);
      } finally {
        await lock.unlock();
      }
    }
  }
}
