// Wires the lifecycle steps in the order they run. Steps that may refuse run before the response:
//   creation: metadata → declared type and extension (content-type) → quota reservation
//   each PATCH: quota claim (deferred length) → bytes stream through the SHA-256, and the first
//     bytes through the type sniffer (refused: the upload is discarded) → settle
//   finish: sha256 verify → detected type (if not settled yet) → move → record (hooks/finalize.ts)
// Housekeeping: repair at start-up, expiry at start-up and every `sweepIntervalMs`.
import type { Readable } from 'node:stream';
import type { Locker } from '@tus/utils';
import type { Caller } from '../server/auth/caller.ts';
import type { UploadRequests } from '../server/upload-requests.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import type { HookDeps } from './deps.ts';
import { expireIdleUploads } from './expiry.ts';
import { discardUpload, finalizeUpload, repairInterrupted, type FailureReason } from './finalize.ts';
import { checkDeclared } from './content-type.ts';
import { concatenate, markPartial, type FinalUpload } from './concat.ts';
import { parseUploadMetadata } from './metadata.ts';
import { claimForPatch, reserveAtCreation, settleReservation, type CreationRequest, type PatchRequest } from './quota.ts';
import { createDigests, type Digests } from './sha256.ts';
import { sniffWrite } from './type-sniffer.ts';

export type { HookDeps } from './deps.ts';

export interface Lifecycle {
  readonly digests: Digests;
  /** Upload requests in flight: per-user admission (routes/uploads.ts), and what expiry skips. */
  readonly requests: UploadRequests;
  create(caller: Caller, metadata: Record<string, string | null> | undefined, req: CreationRequest): UploadRow;
  beforePatch(row: UploadRow, req: PatchRequest): number;
  /**
   * Wraps the bytes about to be written at `offset` (SHA-256, type sniffing). `settle` gets the
   * offset the store reports (null when the write failed) and throws the refusal of a disguised file,
   * after discarding the upload.
   */
  observeWrite(uploadId: string, offset: number, source: Readable): Promise<{ stream: Readable; settle(newOffset: number | null): Promise<void> }>;
  afterWrite(uploadId: string, stored: { offset: number; size: number | undefined }): void;
  finish(upload: { id: string; size: number }): Promise<FileRow>;
  /** Removes an unfinished upload; `reason` goes into the upload.failed event. */
  discard(uploadId: string, reason: FailureReason): Promise<void>;
  /** Whether finishing this upload stops short of a file (Upload-Concat: partial). */
  isPartial(uploadId: string): boolean;
  /** tus concatenation: the final upload, assembled from partial uploads and finished (hooks/concat.ts). */
  concatenate(final: FinalUpload): Promise<FileRow>;
  expire(): Promise<number>;
  repair(): ReturnType<typeof repairInterrupted>;
  startHousekeeping(sweepIntervalMs: number): () => void;
}

export function createLifecycle(deps: HookDeps, locker: Locker, requests: UploadRequests): Lifecycle {
  const digests = createDigests(deps.storage, deps.repo);
  // Expiry only needs to know an upload is alive to within a small part of its idle limit:
  // touching on every PATCH cost a write transaction each (a client sending 500 KiB chunks
  // makes thousands per GiB). At most 1/100 of UPLOAD_EXPIRY_SECONDS, and never over a minute.
  const touchEveryMs = Math.min(60_000, deps.uploadExpirySeconds * 10);
  const lifecycle: Lifecycle = {
    digests,
    requests,
    create(caller, metadata, req) {
      const meta = parseUploadMetadata(metadata, caller);
      // A partial upload's type and events belong to its final upload (hooks/concat.ts).
      if (!req.partial) checkDeclared(deps.typePolicy, meta);
      return deps.repo.atomically(() => {
        const row = reserveAtCreation(deps, meta, req);
        if (req.partial) {
          markPartial(deps, row);
          return row;
        }
        deps.events.emit('upload.created', row.id, {
          upload_id: row.id, user_id: row.user_id, filename: row.filename, folder: row.folder,
          content_type: row.content_type, size: row.length,
        });
        return row;
      });
    },
    beforePatch(row, req) {
      const now = deps.now();
      if (now - row.touched_at >= touchEveryMs) {
        deps.repo.touchUpload(row.id, now);
        row.touched_at = now; // what Upload-Expires is computed from (server/routes/uploads.ts)
      }
      return claimForPatch(deps, row, req);
    },
    async observeWrite(uploadId, offset, source) {
      const sniff = await sniffWrite(deps, uploadId, offset);
      const digest = await digests.observe(uploadId, offset, source);
      // A refusal ends the stream going to storage, not tus's source: tus would answer at once,
      // before the upload is discarded; this way the store's write returns first and settle runs
      // (and throws the refusal).
      sniff.listen(source, () => digest.cut());
      // A PATCH streaming for longer than the expiry keeps its upload alive as its bytes arrive
      // (beforePatch recorded its start), so no instance takes it for idle meanwhile or right after.
      let touched = deps.now();
      source.on('data', () => {
        const now = deps.now();
        if (now - touched < touchEveryMs) return;
        touched = now;
        deps.repo.touchUpload(uploadId, now);
      });
      return {
        stream: digest.stream,
        async settle(newOffset) {
          digest.settle(newOffset);
          const refusal = await sniff.settle(newOffset);
          if (refusal) {
            deps.log.info({ event: 'upload.refused', upload_id: uploadId, reason: refusal.code }, refusal.message);
            await discardUpload(deps, digests, uploadId, 'type_not_allowed');
            throw refusal;
          }
        },
      };
    },
    afterWrite(uploadId, stored) {
      settleReservation(deps, uploadId, stored);
    },
    finish(upload) {
      return finalizeUpload(deps, digests, upload);
    },
    discard(uploadId, reason) {
      return discardUpload(deps, digests, uploadId, reason);
    },
    isPartial(uploadId) {
      return deps.repo.isPartialUpload(uploadId);
    },
    concatenate(final) {
      return concatenate(deps, digests, locker, lifecycle, final);
    },
    expire() {
      return expireIdleUploads(deps, digests, locker, requests);
    },
    repair() {
      return repairInterrupted(deps, digests);
    },
    startHousekeeping(sweepIntervalMs) {
      const timer = setInterval(() => {
        lifecycle.expire().catch((error: unknown) => deps.log.error({ err: error }, 'upload expiry failed'));
      }, sweepIntervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
  return lifecycle;
}
