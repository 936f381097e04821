// Finish step: verify the SHA-256, move the bytes to their key and record the file.
//
// One transaction per finish, after the move: it deletes the upload row, inserts the file as
// 'ready', queues its scan and emits upload.finished. Nothing is visible before its bytes are at
// their key, and every instant of a crash leaves a state the next start settles:
//   - before the move, or during it while the bytes are still readable as the upload: an
//     unfinished upload whose bytes are all stored; the client's HEAD finishes it again
//     (server/uploads/service.ts), and the move is idempotent.
//   - after the move, before the transaction: an unfinished upload whose bytes are gone from upload
//     storage but sit at the file's key; the start-up repair records the file (hooks/repair.ts).
import { AppError } from '../server/errors.ts';
import type { Repository } from '../server/db/contract.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import { fileKey } from '../server/storage/keys.ts';
import { categoryFor, detectStoredFile } from './content-type.ts';
import type { HookDeps } from './deps.ts';
import { discardUpload } from './discard.ts';
import { detectAtFinish, type TypesAtEnd } from './type-sniffer.ts';
import type { Digests } from './sha256.ts';

/** An upload whose bytes are all stored. */
export interface FinishingUpload {
  id: string;
  size: number;
  /** Its row, when the caller has just read it under the upload's lock: not read again. */
  row?: UploadRow;
  /** The request finishing it, for the upload.finished log line. */
  requestId?: string;
}

export async function finalizeUpload(deps: HookDeps, digests: Digests, upload: FinishingUpload, atEnd: TypesAtEnd): Promise<FileRow> {
  const row = upload.row ?? (await deps.repo.getUpload(upload.id));
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
    detected = atEnd.has(row.id) ? atEnd.get(row.id) : await detectAtFinish(deps, row, upload.size);
  } catch (error) {
    await discardUpload(deps, digests, row.id, 'type_not_allowed');
    throw error;
  }
  const completedAt = deps.now();
  const file = fileOf(deps, row, {
    key: fileKey(row.user_id, new Date(completedAt), row.id, row.filename),
    size: upload.size,
    sha256,
    createdAt: completedAt,
    detected: detected ?? null,
  });
  // A failed move writes nothing: the upload stays as it was, and a later request finishes it.
  await deps.storage.promote(row.id, file.key);
  if (detected === undefined) {
    // The first bytes were unreadable before the move (S3 after a crash cut the head's PATCH).
    try {
      typeFile(file, await detectStoredFile(deps, file));
    } catch (error) {
      await refuseMoved(deps, digests, file, 'type_not_allowed');
      throw error;
    }
  }
  await recordFinished(deps, file);
  atEnd.delete(row.id);
  deps.log.info({ event: 'upload.finished', request_id: upload.requestId, key: file.key, user_id: file.user_id, size: file.size }, 'upload finished');
  return file;
}

/** The 'ready' record of an upload whose bytes are at `at.key`. */
export function fileOf(
  deps: Pick<HookDeps, 'scans'>,
  row: UploadRow,
  at: { key: string; size: number; sha256: string; createdAt: number; detected: string | null },
): FileRow {
  return {
    key: at.key,
    user_id: row.user_id,
    upload_id: row.id,
    folder: row.folder,
    filename: row.filename,
    content_type: row.content_type,
    size: at.size,
    sha256: at.sha256,
    created_at: at.createdAt,
    state: 'ready',
    detected_type: at.detected,
    category: categoryFor(at.detected, row.content_type),
    scan_status: deps.scans.enabled ? 'pending' : null,
    scan_signature: null,
    scanned_at: null,
  };
}

export function typeFile(file: FileRow, detected: string | null): void {
  file.detected_type = detected;
  file.category = categoryFor(detected, file.content_type);
}

/**
 * The one transaction of a finish: the upload's reservation becomes the file's size (quota never
 * counts both), the file becomes visible, with its scan job and upload.finished.
 */
export async function recordFinished(deps: HookDeps, file: FileRow): Promise<void> {
  await deps.repo.atomically(async (tx) => {
    await tx.replaceUploadWithFile(file);
    await announceFinished(deps, tx, file);
  });
}

/** Scan job and upload.finished: call on the transaction `tx` that makes the file 'ready'. */
export async function announceFinished(deps: Pick<HookDeps, 'scans'>, tx: Repository, file: FileRow): Promise<void> {
  await deps.scans.enqueue(tx, file.key);
  await tx.outbox.emit('upload.finished', file.upload_id, {
    upload_id: file.upload_id, key: file.key, user_id: file.user_id, folder: file.folder, filename: file.filename,
    size: file.size, sha256: file.sha256, content_type: file.content_type, detected_type: file.detected_type, category: file.category,
  });
}

/**
 * Bytes moved to their key but refused before they were recorded: bytes first, then the upload's
 * row with upload.failed (never announced as finished, so not as a deleted file either).
 */
export async function refuseMoved(deps: HookDeps, digests: Pick<Digests, 'discard'>, file: FileRow, reason: 'type_not_allowed' | 'checksum_mismatch'): Promise<void> {
  await deps.storage.removeFile(file.key);
  await discardUpload(deps, digests, file.upload_id, reason);
}
