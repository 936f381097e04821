// Removing what an upload left: an unfinished upload (terminated, refused, expired, lost) and a
// finished file (DELETE /v1/files/{key}). Bytes go first, then the row with the event that reports
// it, so a crash in between leaves a row without bytes (expiry or the start-up repair removes it),
// never bytes without a row.
import type { Repository } from '../server/db/contract.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import { fileKeysBetween } from '../server/storage/keys.ts';
import type { HookDeps } from './deps.ts';
import type { Digests } from './sha256.ts';

/** Why an unfinished upload was removed (the upload.failed event's `reason`). */
export type FailureReason = 'checksum_mismatch' | 'type_not_allowed' | 'expired' | 'terminated' | 'creation_failed' | 'lost';

/** upload.failed is emitted with the row's deletion, once (a second discard finds no row). */
export async function discardUpload(deps: HookDeps, digests: Pick<Digests, 'discard'>, uploadId: string, reason: FailureReason): Promise<void> {
  digests.discard(uploadId);
  await deps.storage.removeUpload(uploadId);
  if (CLIENT_GONE.has(reason)) await removeMovedBytes(deps, uploadId);
  await deps.repo.atomically(async (tx) => {
    const row = await tx.getUpload(uploadId);
    if (!row) return;
    // A partial upload announced nothing (hooks/concat.ts).
    const announced = !(await tx.isPartialUpload(uploadId));
    await tx.deleteUpload(uploadId);
    if (announced) await announceFailure(tx, uploadId, row, reason);
  });
}

/**
 * Ends after which no client will ask for the upload again: a creation whose client never learnt its
 * URL, and a termination. (Expiry first records what a finish moved: hooks/repair.ts.)
 */
const CLIENT_GONE = new Set<FailureReason>(['creation_failed', 'terminated']);

/**
 * A finish that moved the bytes to the file's key and then failed to record them (hooks/finalize.ts)
 * leaves them for the client's next HEAD to record. When the client will not come back they are
 * removed with the upload, unless a record holds them after all.
 */
async function removeMovedBytes(deps: HookDeps, uploadId: string): Promise<void> {
  const row = await deps.repo.getUpload(uploadId);
  if (!row || (await deps.repo.getFileByUploadId(uploadId))) return;
  for (const key of fileKeysBetween(row.user_id, row.id, row.filename, row.touched_at, deps.now())) await deps.storage.removeFile(key);
}

/** upload.failed: call on the transaction `tx` that removes the upload's row or its file record. */
export function announceFailure(tx: Repository, uploadId: string, what: Pick<UploadRow, 'user_id' | 'filename' | 'folder'>, reason: FailureReason): Promise<void> {
  return tx.outbox.emit('upload.failed', uploadId, { upload_id: uploadId, user_id: what.user_id, filename: what.filename, folder: what.folder, reason });
}

/** `instanceId`: this instance, named on the record while the deletion is in flight. */
export async function deleteFile(deps: HookDeps, file: FileRow, instanceId: string, requestId?: string): Promise<void> {
  await removeFile(deps, file, instanceId);
  deps.log.info({ event: 'file.deleted', request_id: requestId, key: file.key, user_id: file.user_id }, 'file deleted');
}

/** Emits the event that reports a record's removal, on the transaction `tx` that removes it. */
export type Announce = (tx: Repository) => Promise<void>;

/**
 * Marked 'deleting' by this instance (a crash from here on is finished by the start-up repair,
 * hooks/repair.ts, of this instance or of another once this one is gone), the bytes, then the
 * record with the event that reports it.
 */
async function removeFile(deps: HookDeps, file: FileRow, instanceId: string): Promise<void> {
  await deps.repo.markDeleting(file.key, instanceId);
  await deps.storage.removeFile(file.key);
  await forgetFile(deps, file);
}

/** The record goes, with the event that reports it (file.deleted unless `announce` says otherwise). */
export async function forgetFile(
  deps: Pick<HookDeps, 'repo'>,
  file: FileRow,
  announce: Announce = (tx) => tx.outbox.emit('file.deleted', file.upload_id, { upload_id: file.upload_id, key: file.key, user_id: file.user_id }),
): Promise<void> {
  await deps.repo.atomically(async (tx) => {
    await tx.deleteFile(file.key);
    await announce(tx);
  });
}
