// Expiry step: unfinished uploads idle for UPLOAD_EXPIRY_SECONDS are removed with their
// reservations, at start-up and periodically.
//  - One instance at a time sweeps (a lease, `leases.acquire('expiry', …)`; on SQLite the one
//    instance always holds it). The lease is renewed by each sweep and ends three sweep intervals
//    after the last, so when its holder dies, another instance takes over; one that stops cleanly
//    hands it back at once.
//  - An upload that a request is working on (a PATCH receiving bytes or silent, a finish) is
//    skipped until a later round, however long ago that request began, on whichever instance it
//    runs: its lock is taken only when free (hooks/lock-if-free.ts). Asking for the lock as a
//    request does would make tus cancel the holder (the newer request wins), cutting a PATCH whose
//    bytes paused for longer than the expiry. A silent PATCH ends after UPLOAD_IDLE_TIMEOUT_SECONDS;
//    the upload then expires at a later sweep if nothing touched it since.
//  - An upload whose finish was cut between moving its bytes to the file's key and recording the
//    file (its instance died, and neither a HEAD from its client nor a start-up repair came since)
//    is recorded as that finish would have, never discarded: its bytes would be left at the key
//    with no record.
import type { HookDeps } from './deps.ts';
import { discardUpload } from './discard.ts';
import type { LockIfFree } from './lock-if-free.ts';
import { recordMoved } from './repair.ts';
import type { Digests } from './sha256.ts';
import { isResumable } from './unresumable.ts';

const BATCH = 100;
/** The name of the sweep's lease (repository `leases`). */
export const EXPIRY_LEASE = 'expiry';

/** How often the sweep runs: a quarter of the expiry, between 1 s and a minute. */
export function sweepIntervalMs(uploadExpirySeconds: number): number {
  return Math.min(60_000, Math.max(1000, (uploadExpirySeconds * 1000) / 4));
}

/** Sweeps if this instance holds (or takes) the expiry lease; 0 when another instance holds it. */
export async function sweepIfHolder(deps: HookDeps, instanceId: string, sweep: () => Promise<number>): Promise<number> {
  const leaseMs = 3 * sweepIntervalMs(deps.uploadExpirySeconds);
  if (!(await deps.repo.leases.acquire(EXPIRY_LEASE, instanceId, deps.now(), leaseMs))) return 0;
  return sweep();
}

export async function expireIdleUploads(deps: HookDeps, digests: Digests, lockIfFree: LockIfFree): Promise<number> {
  const cutoff = deps.now() - deps.uploadExpirySeconds * 1000;
  let expired = 0;
  const skipped = new Set<string>();
  for (;;) {
    const rows = (await deps.repo.idleUploads(cutoff, BATCH + skipped.size)).filter((r) => !skipped.has(r.id));
    if (rows.length === 0) return expired;
    for (const row of rows) {
      const lock = await lockIfFree(row.id);
      if (!lock) {
        skipped.add(row.id);
        continue;
      }
      try {
        // Re-read under the lock: a PATCH may have touched it since the query.
        const current = await deps.repo.getUpload(row.id);
        if (current && current.touched_at < cutoff) {
          if (!(await isResumable(deps, row.id)) && (await recordMoved(deps, digests, current)) !== 'absent') continue;
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
