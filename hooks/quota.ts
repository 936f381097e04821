// Creation step 2 and the PATCH guard: every byte an upload may still write is reserved in SQLite
// before it is accepted, so parallel uploads of one user can never overshoot the quota together.
//  - Known length: the whole Upload-Length is reserved at creation.
//  - Deferred length (creation-defer-length): each request first claims what it may write
//    (its Content-Length, the declared Upload-Length, or, for a chunked body, the room left), and
//    afterwards the reservation settles to the bytes actually stored.
import { AppError } from '../server/errors.ts';
import type { UploadRow } from '../server/db/repo.ts';
import type { HookDeps } from './deps.ts';
import type { UploadMetadata } from './metadata.ts';

/** What the quota arithmetic reads: the database and the limits. */
export type QuotaDeps = Pick<HookDeps, 'repo' | 'quotaBytes' | 'maxUploadBytes' | 'maxUnfinishedUploads' | 'now'>;

export interface CreationRequest {
  uploadId: string;
  length: number | null;
  /** Bytes sent with the creation request itself (creation-with-upload), when known. */
  bodyLength: number | null;
  hasBody: boolean;
  /** Created with Upload-Concat: partial (hooks/concat.ts). */
  partial?: boolean;
  /** What to reserve instead of the length: a final upload's bytes are held by its partial uploads. */
  reserve?: number;
  /**
   * The unfinished uploads this one replaces when it finishes: a final upload's partial uploads.
   * They hold its place among the user's unfinished uploads, so a user at the limit can still join
   * them (otherwise nothing but their expiry would ever free a place).
   */
  replaces?: number;
  /** The request creating it, for the upload.created log line. */
  requestId?: string;
}

export async function reserveAtCreation(deps: QuotaDeps, meta: UploadMetadata, req: CreationRequest): Promise<UploadRow> {
  const now = deps.now();
  let reserve: number;
  if (req.reserve !== undefined) reserve = req.reserve;
  else if (req.length !== null) reserve = req.length;
  else if (!req.hasBody) reserve = 0;
  else reserve = req.bodyLength ?? (await deps.repo.roomFor(meta.userId, req.uploadId, deps.quotaBytes));
  const row: UploadRow = {
    id: req.uploadId,
    user_id: meta.userId,
    length: req.length,
    reserved_bytes: reserve,
    filename: meta.filename,
    folder: meta.folder,
    content_type: meta.contentType,
    sha256_declared: meta.sha256,
    created_at: now,
    head: null,
    type_checked: 0,
    detected_type: null,
    touched_at: now,
  };
  const outcome = await deps.repo.reserveUpload(row, deps.quotaBytes, deps.maxUnfinishedUploads + (req.replaces ?? 0));
  if (outcome === 'quota') throw await quotaExceeded(deps, meta.userId);
  if (outcome === 'count') {
    throw new AppError(
      'too_many_unfinished_uploads',
      `at most ${deps.maxUnfinishedUploads} unfinished uploads per user; finish or terminate one first`,
    );
  }
  return row;
}

export interface PatchRequest {
  declaredLength: number | null;
  contentLength: number | null;
}

/** Before a PATCH of a deferred-length upload: claim what it may write. Returns the new bound. */
export async function claimForPatch(deps: QuotaDeps, row: UploadRow, req: PatchRequest): Promise<number> {
  if (row.length !== null) return row.length;
  let want: number;
  if (req.declaredLength !== null) want = req.declaredLength;
  else if (req.contentLength !== null) want = row.reserved_bytes + req.contentLength;
  else {
    const room = await deps.repo.roomFor(row.user_id, row.id, deps.quotaBytes);
    if (room <= row.reserved_bytes) throw await quotaExceeded(deps, row.user_id);
    want = room;
  }
  want = Math.min(want, deps.maxUploadBytes);
  if (!(await deps.repo.setReservation(row.id, Math.max(want, row.reserved_bytes), null, deps.quotaBytes, deps.now()))) {
    throw await quotaExceeded(deps, row.user_id);
  }
  return Math.max(want, row.reserved_bytes);
}

/**
 * Whether settling can change nothing: the length is known and already reserved whole (every
 * upload created with Upload-Length). Callers skip reading the stored offset then.
 */
export function reservationIsFinal(row: Pick<UploadRow, 'length' | 'reserved_bytes'>): boolean {
  return row.length !== null && row.reserved_bytes === row.length;
}

/** After any PATCH or creation: the reservation becomes the declared length, or the bytes stored. */
export async function settleReservation(deps: Pick<QuotaDeps, 'repo' | 'now'>, id: string, stored: { offset: number; size: number | undefined }): Promise<void> {
  const reserved = stored.size ?? stored.offset;
  await deps.repo.setReservation(id, reserved, stored.size ?? null, Number.MAX_SAFE_INTEGER, deps.now());
}

async function quotaExceeded(deps: Pick<QuotaDeps, 'repo' | 'quotaBytes'>, userId: string): Promise<AppError> {
  const { used_bytes, reserved_bytes } = await deps.repo.usage(userId);
  return new AppError(
    'quota_exceeded',
    `quota ${deps.quotaBytes} bytes: ${used_bytes} stored and ${reserved_bytes} reserved by unfinished uploads`,
  );
}
