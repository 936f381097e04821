// Start-up step: unfinished uploads that no client can ever resume are released now, with their
// reservations, instead of holding quota until UPLOAD_EXPIRY_SECONDS. That is a row whose upload
// storage lost its tus bookkeeping: a crash cut the creation between the row (written in tus's
// onUploadCreate) and the store's entry (the data file and its tus_uploads row, or S3's multipart upload and
// its `.info`), or the bookkeeping went missing since. HEAD on such an upload can only answer 404.
// Runs before the server listens, and one server owns its database, so no creation is under way.
import type { DataStore } from '@tus/utils';
import type { UploadRow } from '../server/db/repo.ts';
import type { HookDeps } from './deps.ts';
import { discardUpload } from './discard.ts';
import type { Digests } from './sha256.ts';

/** What the tus stores of this server add (server/storage/*-tus-store.ts). */
interface ResumableCheck {
  /** Whether tus's bookkeeping for the upload is all there; throws when storage cannot tell. */
  isResumable(uploadId: string): Promise<boolean>;
}

const PARALLEL_CHECKS = 8;

/**
 * `present`: ids with anything in upload storage (listed before the database was read).
 * `settled`: whether an upload found unresumable was settled otherwise (its bytes were moved to
 * their key by an interrupted finish, hooks/repair.ts); if not, it is released.
 */
export async function releaseUnresumable(
  deps: HookDeps,
  digests: Digests,
  present: Set<string>,
  settled: (row: UploadRow) => Promise<boolean>,
): Promise<number> {
  const store = deps.storage.tusStore as DataStore & Partial<ResumableCheck>;
  const ids = await deps.repo.unfinishedUploadIds();
  let released = 0;
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      let resumable: boolean;
      try {
        resumable = present.has(id) && (store.isResumable ? await store.isResumable(id) : true);
      } catch (error) {
        // Storage could not answer (unreachable): keep the upload; expiry settles it in time.
        deps.log.warn({ err: error, upload_id: id }, 'start-up: could not check an unfinished upload');
        continue;
      }
      if (resumable) continue;
      const row = await deps.repo.getUpload(id);
      if (!row) continue;
      try {
        if (await settled(row)) continue;
      } catch (error) {
        deps.log.warn({ err: error, upload_id: id }, 'start-up: could not look for the file of an unfinished upload');
        continue;
      }
      await discardUpload(deps, digests, id, 'lost');
      deps.log.warn({ event: 'upload.lost', upload_id: id }, 'start-up: released an upload whose storage entry is missing');
      released++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_CHECKS, ids.length) }, worker));
  return released;
}
