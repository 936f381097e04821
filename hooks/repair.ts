// Start-up step: settles what a crash interrupted before the server takes requests.
//  - A deletion ('deleting'): its bytes and its record go.
//  - A 'committing' record, which only databases of earlier releases hold (a finish writes its
//    record once the bytes are in place): its bytes may still sit in upload storage, so the
//    idempotent move runs again; the file becomes ready, or, its bytes gone from both places, the
//    record goes.
//  - A finish cut after the move and before its transaction (hooks/finalize.ts): the upload's bytes
//    are gone from upload storage but sit at the file's key; the file is recorded.
//  - Upload bytes the database does not know (orphans) are removed, and unfinished uploads whose
//    storage entry is gone are released (hooks/unresumable.ts).
// Other instances may be running on the same database (PostgreSQL): their work in flight is not
// interrupted and is left to them. A deletion names the instance that runs it (markDeleting) and is
// repaired only once that instance is gone, by one instance (takeOverDeletion); an upload is settled only under its lock, taken when
// free (a finish holds it from its move to its record), and not while it may be a creation in flight.
import { createHash } from 'node:crypto';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import { fileKeysBetween } from '../server/storage/keys.ts';
import { detectStoredFile } from './content-type.ts';
import type { HookDeps } from './deps.ts';
import { announceFailure, forgetFile } from './discard.ts';
import { announceFinished, fileOf, recordFinished, refuseMoved, typeFile } from './finalize.ts';
import type { LockIfFree } from './lock-if-free.ts';
import type { Digests } from './sha256.ts';
import { releaseUnresumable } from './unresumable.ts';

/**
 * A creation writes its row, then tus takes the upload's lock and makes its store entry: while
 * another instance is alive, an upload younger than this may be such a creation, and is left to
 * expiry. Far above the moment between the two on any healthy instance.
 */
export const CREATION_IN_FLIGHT_MS = 60_000;

export interface RepairScope {
  /** This instance: it takes over the deletions it finishes, so no other finishes them too. */
  instanceId: string;
  lockIfFree: LockIfFree;
  /** Other instances alive now: their work in flight is theirs. */
  liveOthers: Set<string>;
}

export interface Repaired {
  committed: number;
  deleted: number;
  lost: number;
  orphans: number;
  released: number;
}

export async function repairInterrupted(deps: HookDeps, digests: Digests, scope: RepairScope): Promise<Repaired> {
  const result: Repaired = { committed: 0, deleted: 0, lost: 0, orphans: 0, released: 0 };
  const deleting = await deps.repo.deletionOwners();
  for (const file of await deps.repo.filesInTransition()) {
    if (file.state === 'deleting') {
      const owner = deleting.get(file.key) ?? null;
      if (owner !== null && scope.liveOthers.has(owner)) continue; // in flight there
      if (await finishDeletion(deps, scope.instanceId, file, owner)) result.deleted++;
      continue;
    }
    try {
      await deps.storage.promote(file.upload_id, file.key);
    } catch (error) {
      deps.log.warn({ err: error, key: file.key }, 'interrupted commit: bytes not found in upload storage');
    }
    // upload.finished goes with the state it reports: finished, or (bytes gone) failed. Either way
    // the upload's upload.created is followed by an outcome.
    if (await deps.storage.statFile(file.key)) {
      await deps.repo.atomically(async (tx) => {
        await tx.setFileState(file.key, 'ready');
        await announceFinished(deps, tx, file);
      });
      result.committed++;
    } else {
      deps.log.error({ key: file.key }, 'interrupted commit: bytes are gone; removing the record');
      await forgetFile(deps, file, (tx) => announceFailure(tx, file.upload_id, file, 'lost'));
      result.lost++;
    }
  }
  // Listed before the database is read: an upload created meanwhile already has its row.
  const present = await deps.storage.listUploadIds();
  const known = await deps.repo.knownUploadIds();
  for (const id of present) {
    if (known.has(id)) continue;
    await deps.storage.removeUpload(id);
    result.orphans++;
  }
  result.released = await releaseUnresumable(deps, digests, {
    present: new Set(present),
    async settled(row) {
      const outcome = await recordMoved(deps, digests, row);
      if (outcome === 'recorded') result.committed++;
      return outcome !== 'absent';
    },
    lockIfFree: scope.lockIfFree,
    touchedBefore: scope.liveOthers.size > 0 ? deps.now() - CREATION_IN_FLIGHT_MS : Infinity,
  });
  return result;
}

/**
 * Deletions whose instance is gone (its heartbeat lapsed, or it stopped), finished by the
 * instance that sweeps, so they do not wait for the next start. Unnamed ones are left to the
 * start-up repair: a deletion is named as it begins, so only one interrupted before a restart is
 * unnamed.
 */
export async function finishAbandonedDeletions(deps: HookDeps, scope: Omit<RepairScope, 'lockIfFree'>): Promise<number> {
  let finished = 0;
  for (const [key, owner] of await deps.repo.deletionOwners()) {
    if (owner === scope.instanceId || scope.liveOthers.has(owner)) continue;
    const file = await deps.repo.getFile(key);
    if (file?.state !== 'deleting') continue;
    if (await finishDeletion(deps, scope.instanceId, file, owner)) {
      deps.log.warn({ event: 'file.deleted', key, instance_id: owner }, 'finished the deletion of an instance that is gone');
      finished++;
    }
  }
  return finished;
}

/** Instances finding it together: one takes it over and finishes it (one file.deleted). */
async function finishDeletion(deps: HookDeps, instanceId: string, file: FileRow, owner: string | null): Promise<boolean> {
  if (!(await deps.repo.takeOverDeletion(file.key, instanceId, owner))) return false;
  await deps.storage.removeFile(file.key);
  await forgetFile(deps, file);
  return true;
}

/**
 * An unfinished upload whose bytes left upload storage: if a finish moved them to the file's key
 * and was cut before its transaction, the file is recorded now (or refused, as the finish would have). The key's date is the UTC
 * day the finish began, at or after the upload's last recorded activity, so each day from then to
 * now is tried.
 */
export async function recordMoved(deps: HookDeps, digests: Pick<Digests, 'discard'>, row: UploadRow): Promise<'recorded' | 'refused' | 'absent'> {
  const now = deps.now();
  for (const key of fileKeysBetween(row.user_id, row.id, row.filename, row.touched_at, now)) {
    const stored = await deps.storage.statFile(key);
    if (!stored) continue;
    const hash = createHash('sha256');
    for await (const chunk of await deps.storage.openFile(key)) hash.update(chunk as Buffer);
    const file = fileOf(deps, row, {
      key,
      size: stored.size,
      sha256: hash.digest('hex'),
      createdAt: stored.modifiedAt.getTime(),
      detected: row.type_checked === 1 ? row.detected_type : null,
    });
    if (row.sha256_declared !== null && row.sha256_declared !== file.sha256) {
      await refuseMoved(deps, digests, file, 'checksum_mismatch');
      return 'refused';
    }
    if (row.type_checked !== 1) {
      try {
        typeFile(file, await detectStoredFile(deps, file));
      } catch {
        await refuseMoved(deps, digests, file, 'type_not_allowed');
        return 'refused';
      }
    }
    await recordFinished(deps, file);
    deps.log.warn({ event: 'upload.finished', key, upload_id: row.id }, 'recorded a file whose finish was interrupted after its move');
    return 'recorded';
  }
  return 'absent';
}
