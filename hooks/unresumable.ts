// Start-up step: unfinished uploads that no client can ever resume are released now, with their
// reservations, instead of holding quota until UPLOAD_EXPIRY_SECONDS. That is a row whose upload
// storage lost its tus bookkeeping: a crash cut the creation between the row (written in tus's
// onUploadCreate) and the store's entry (the data file and its tus_uploads row, or S3's multipart upload and
// its `.info`), or the bookkeeping went missing since. HEAD on such an upload can only answer 404.
//
// Other instances may be running (several instances on PostgreSQL), and an upload without its
// bookkeeping may be theirs in flight: a finish between its move and its record, a discard between
// its bytes and its row, a creation between its row and its store entry. So each one is settled
// only under its upload's lock, taken when free (a finish and a PATCH hold it, on any instance),
// checked again under it, and, while another instance is alive, only once it is older than a
// creation in flight can be (tus takes the lock right after writing the row).
import type { DataStore } from '@tus/utils';
import type { UploadRow } from '../server/db/repo.ts';
import type { HookDeps } from './deps.ts';
import { discardUpload } from './discard.ts';
import type { LockIfFree } from './lock-if-free.ts';
import type { Digests } from './sha256.ts';

/** What the tus stores of this server add (server/storage/*-tus-store.ts). */
interface ResumableCheck {
  /** Whether tus's bookkeeping for the upload is all there; throws when storage cannot tell. */
  isResumable(uploadId: string): Promise<boolean>;
}

const PARALLEL_CHECKS = 8;

export interface Unresumable {
  /** Ids with anything in upload storage (listed before the database was read). */
  present: Set<string>;
  /**
   * Whether an upload found unresumable was settled otherwise (its bytes were moved to their key by
   * an interrupted finish, hooks/repair.ts); if not, it is released.
   */
  settled(row: UploadRow): Promise<boolean>;
  lockIfFree: LockIfFree;
  /** Rows touched at or after this may be creations in flight on another instance: left alone. */
  touchedBefore: number;
}

/** Whether tus's bookkeeping for the upload is all there (a store that cannot tell: yes); throws when storage cannot answer. */
export async function isResumable(deps: Pick<HookDeps, 'storage'>, uploadId: string): Promise<boolean> {
  const store = deps.storage.tusStore as DataStore & Partial<ResumableCheck>;
  return store.isResumable ? store.isResumable(uploadId) : true;
}

export async function releaseUnresumable(deps: HookDeps, digests: Digests, options: Unresumable): Promise<number> {
  const resumable = async (id: string, present: boolean) => present && (await isResumable(deps, id));
  const ids = await deps.repo.unfinishedUploadIds();
  let released = 0;
  let next = 0;

  /** Under the upload's lock: what is true now, not what the listing saw. */
  /** Whether the upload's bookkeeping is all there; undefined when storage cannot tell. */
  const check = async (id: string, present: boolean) => {
    try {
      return await resumable(id, present);
    } catch (error) {
      // Storage could not answer (unreachable): keep the upload; expiry settles it in time.
      deps.log.warn({ err: error, upload_id: id }, 'start-up: could not check an unfinished upload');
      return undefined;
    }
  };

  /** Under the upload's lock: what is true now, not what the listing saw. */
  const settle = async (id: string) => {
    const row = await deps.repo.getUpload(id);
    if (!row || row.touched_at >= options.touchedBefore) return;
    if ((await check(id, true)) !== false) return;
    try {
      if (await options.settled(row)) return;
    } catch (error) {
      deps.log.warn({ err: error, upload_id: id }, 'start-up: could not look for the file of an unfinished upload');
      return;
    }
    await discardUpload(deps, digests, id, 'lost');
    deps.log.warn({ event: 'upload.lost', upload_id: id }, 'start-up: released an upload whose storage entry is missing');
    released++;
  };

  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      if ((await check(id, options.present.has(id))) !== false) continue;
      const lock = await options.lockIfFree(id);
      if (!lock) continue; // a request works on it now, here or on another instance
      try {
        await settle(id);
      } finally {
        await lock.unlock();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_CHECKS, ids.length) }, worker));
  return released;
}
