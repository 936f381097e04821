// Wires the lifecycle steps in the order they run. Steps that may refuse run before the response:
//   creation: metadata → quota reservation
//   each PATCH: quota claim (deferred length) → bytes stream through the SHA-256 → settle
//   finish: sha256 verify → move → record (hooks/finalize.ts)
// Housekeeping: repair at start-up, expiry at start-up and every `sweepIntervalMs`.
import type { Locker } from '@tus/utils';
import type { Caller } from '../server/auth/caller.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import type { HookDeps } from './deps.ts';
import { expireIdleUploads } from './expiry.ts';
import { discardUpload, finalizeUpload, repairInterrupted } from './finalize.ts';
import { parseUploadMetadata } from './metadata.ts';
import { claimForPatch, reserveAtCreation, settleReservation, type CreationRequest, type PatchRequest } from './quota.ts';
import { createDigests, type Digests } from './sha256.ts';

export type { HookDeps } from './deps.ts';

export interface Lifecycle {
  readonly digests: Digests;
  create(caller: Caller, metadata: Record<string, string | null> | undefined, req: CreationRequest): UploadRow;
  beforePatch(row: UploadRow, req: PatchRequest): number;
  afterWrite(uploadId: string, stored: { offset: number; size: number | undefined }): void;
  finish(upload: { id: string; size: number }): Promise<FileRow>;
  discard(uploadId: string): Promise<void>;
  expire(): Promise<number>;
  repair(): ReturnType<typeof repairInterrupted>;
  startHousekeeping(sweepIntervalMs: number): () => void;
}

export function createLifecycle(deps: HookDeps, locker: Locker): Lifecycle {
  const digests = createDigests(deps.storage, deps.repo);
  const lifecycle: Lifecycle = {
    digests,
    create(caller, metadata, req) {
      return reserveAtCreation(deps, parseUploadMetadata(metadata, caller), req);
    },
    beforePatch(row, req) {
      deps.repo.touchUpload(row.id, deps.now());
      return claimForPatch(deps, row, req);
    },
    afterWrite(uploadId, stored) {
      settleReservation(deps, uploadId, stored);
    },
    finish(upload) {
      return finalizeUpload(deps, digests, upload);
    },
    discard(uploadId) {
      return discardUpload(deps, digests, uploadId);
    },
    expire() {
      return expireIdleUploads(deps, digests, locker);
    },
    repair() {
      return repairInterrupted(deps);
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
