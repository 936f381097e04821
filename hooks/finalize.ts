// Finish step: verify the SHA-256, move the bytes to their key and record the file.
//
// Crash safety. The database row is an intent written *before* bytes move, and the move is
// idempotent, so every instant of a crash leaves a state that start-up (repairInterrupted) settles:
//   1. one transaction: delete the upload row, insert the file row as 'committing'
//      (crash before it: still an unfinished upload; the client resumes and the finish runs again)
//   2. move the bytes (rename on disk) and drop the tus sidecar
//      (crash around it: a 'committing' row; repair runs the idempotent move again, or, if the
//      bytes are gone from both places, deletes the row)
//   3. mark the row 'ready' (only now does the API show it)
// Deletion mirrors it: mark 'deleting', remove bytes, delete the row. Nothing is ever visible
// without its bytes, and bytes never outlive their record past the next start-up.
import { AppError } from '../server/errors.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import { fileKey } from '../server/storage/keys.ts';
import { categoryFor, detectStoredFile } from './content-type.ts';
import type { HookDeps } from './deps.ts';
import { detectAtFinish } from './type-sniffer.ts';
import type { Digests } from './sha256.ts';
import { releaseUnresumable } from './unresumable.ts';

export async function finalizeUpload(
  deps: HookDeps,
  digests: Digests,
  upload: { id: string; size: number },
): Promise<FileRow> {
  const row = deps.repo.getUpload(upload.id);
  if (!row) throw new AppError('not_found', 'this upload no longer exists');
  const sha256 = await digests.finish(upload.id, upload.size);
  if (row.sha256_declared !== null && row.sha256_declared !== sha256) {
    await discardUpload(deps, digests, row.id, 'checksum_mismatch');
    throw new AppError(
      'checksum_mismatch',
      `the declared sha256 ${row.sha256_declared} does not match the received bytes (${sha256}); the upload was discarded`,
    );
  }
  let detected: string | null | undefined;
  try {
    detected = await detectAtFinish(deps, row, upload.size);
  } catch (error) {
    await discardUpload(deps, digests, row.id, 'type_not_allowed');
    throw error;
  }
  const completedAt = deps.now();
  const file: FileRow = {
    key: fileKey(row.user_id, new Date(completedAt), row.id, row.filename),
    user_id: row.user_id,
    upload_id: row.id,
    folder: row.folder,
    filename: row.filename,
    content_type: row.content_type,
    size: upload.size,
    sha256,
    created_at: completedAt,
    state: 'committing',
    detected_type: detected ?? null,
    category: categoryFor(detected ?? null, row.content_type),
    scan_status: deps.scans.enabled ? 'pending' : null,
    scan_signature: null,
    scanned_at: null,
  };
  deps.repo.beginCommit(file);
  try {
    await deps.storage.promote(row.id, file.key);
  } catch (error) {
    restoreUpload(deps, file, row);
    throw error;
  }
  if (detected === undefined) {
    // The first bytes were unreadable before the commit (S3 after a crash cut the head's PATCH).
    try {
      file.detected_type = await detectStoredFile(deps, file);
      file.category = categoryFor(file.detected_type, file.content_type);
      deps.repo.setFileType(file.key, file.detected_type, file.category);
    } catch (error) {
      // Never announced as finished: it goes as a failed upload, not as a deleted file.
      await removeFile(deps, file, () => announceFailure(deps, file.upload_id, file, 'type_not_allowed'));
      throw error;
    }
  }
  makeReady(deps, file);
  deps.log.info({ event: 'upload.finished', key: file.key, user_id: file.user_id, size: file.size }, 'upload finished');
  return { ...file, state: 'ready' };
}

/** The file becomes visible, with its scan job and upload.finished, in one transaction. */
function makeReady(deps: HookDeps, file: FileRow): void {
  deps.repo.atomically(() => {
    deps.repo.setFileState(file.key, 'ready');
    deps.scans.enqueue(file.key);
    deps.events.emit('upload.finished', file.upload_id, {
      upload_id: file.upload_id, key: file.key, user_id: file.user_id, folder: file.folder, filename: file.filename,
      size: file.size, sha256: file.sha256, content_type: file.content_type, detected_type: file.detected_type, category: file.category,
    });
  });
}

function restoreUpload(deps: HookDeps, file: FileRow, row: UploadRow): void {
  deps.repo.abortCommit(file, { ...row, touched_at: deps.now() });
}

/** Why an unfinished upload was removed (the upload.failed event's `reason`). */
export type FailureReason = 'checksum_mismatch' | 'type_not_allowed' | 'expired' | 'terminated' | 'creation_failed' | 'lost';

/**
 * Bytes first, then the row: a crash in between leaves a row that expiry removes, never stray bytes.
 * upload.failed is emitted with the row's deletion, once (a second discard finds no row).
 */
export async function discardUpload(deps: HookDeps, digests: Digests, uploadId: string, reason: FailureReason): Promise<void> {
  digests.discard(uploadId);
  await deps.storage.removeUpload(uploadId);
  deps.repo.atomically(() => {
    const row = deps.repo.getUpload(uploadId);
    if (!row) return;
    // A partial upload announced nothing (hooks/concat.ts).
    const announced = !deps.repo.isPartialUpload(uploadId);
    deps.repo.deleteUpload(uploadId);
    if (announced) announceFailure(deps, uploadId, row, reason);
  });
}

/** upload.failed: call inside the transaction that removes the upload's row or its file record. */
function announceFailure(deps: HookDeps, uploadId: string, what: Pick<UploadRow, 'user_id' | 'filename' | 'folder'>, reason: FailureReason): void {
  deps.events.emit('upload.failed', uploadId, { upload_id: uploadId, user_id: what.user_id, filename: what.filename, folder: what.folder, reason });
}

export async function deleteFile(deps: HookDeps, file: FileRow): Promise<void> {
  await removeFile(deps, file);
  deps.log.info({ event: 'file.deleted', key: file.key, user_id: file.user_id }, 'file deleted');
}

type Announce = () => void;

/**
 * Marked 'deleting' (a crash from here on is finished by repairInterrupted), the bytes, then the
 * record with the event that reports it.
 */
async function removeFile(deps: HookDeps, file: FileRow, announce?: Announce): Promise<void> {
  deps.repo.setFileState(file.key, 'deleting');
  await deps.storage.removeFile(file.key);
  forgetFile(deps, file, announce);
}

/** The record goes, with the event that reports it (file.deleted unless `announce` says otherwise). */
function forgetFile(
  deps: HookDeps,
  file: FileRow,
  announce: Announce = () => deps.events.emit('file.deleted', file.upload_id, { upload_id: file.upload_id, key: file.key, user_id: file.user_id }),
): void {
  deps.repo.atomically(() => {
    deps.repo.deleteFile(file.key);
    announce();
  });
}

/**
 * Start-up: finish every commit or deletion that a crash interrupted, sweep orphaned upload bytes,
 * and release unfinished uploads whose storage entry is gone (hooks/unresumable.ts).
 */
export async function repairInterrupted(
  deps: HookDeps,
  digests: Digests,
): Promise<{ committed: number; deleted: number; lost: number; orphans: number; released: number }> {
  const result = { committed: 0, deleted: 0, lost: 0, orphans: 0, released: 0 };
  for (const file of deps.repo.filesInTransition()) {
    if (file.state === 'deleting') {
      await deps.storage.removeFile(file.key);
      forgetFile(deps, file);
      result.deleted++;
      continue;
    }
    try {
      await deps.storage.promote(file.upload_id, file.key);
    } catch (error) {
      deps.log.warn({ err: error, key: file.key }, 'interrupted commit: bytes not found in upload storage');
    }
    // The crash came before the transaction that carries upload.finished, so the event goes now,
    // with the state it reports: finished, or (bytes gone) failed. Either way the upload's
    // upload.created is followed by an outcome.
    if (await deps.storage.statFile(file.key)) {
      makeReady(deps, file);
      result.committed++;
    } else {
      deps.log.error({ key: file.key }, 'interrupted commit: bytes are gone; removing the record');
      forgetFile(deps, file, () => announceFailure(deps, file.upload_id, file, 'lost'));
      result.lost++;
    }
  }
  // Listed before the database is read: an upload created meanwhile already has its row.
  const present = await deps.storage.listUploadIds();
  const known = deps.repo.knownUploadIds();
  for (const id of present) {
    if (known.has(id)) continue;
    await deps.storage.removeUpload(id);
    result.orphans++;
  }
  result.released = await releaseUnresumable(deps, digests, new Set(present));
  return result;
}
