// Wires the lifecycle steps in the order they run. Steps that may refuse run before the response:
//   creation: metadata → declared type and extension (content-type) → quota reservation
//   each PATCH: quota claim (deferred length) → bytes stream through the SHA-256, and the first
//     bytes through the type sniffer (refused: the upload is discarded) → settle
//   finish: sha256 verify → detected type (if not settled yet) → move → record, in one transaction
//     (hooks/finalize.ts)
// Housekeeping: repair at start-up, expiry at start-up and every `sweepIntervalMs`.
import type { Readable } from 'node:stream';
import type { Locker } from '@tus/utils';
import type { Caller } from '../server/auth/caller.ts';
import type { UploadRequests } from '../server/upload-requests.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import type { HookDeps } from './deps.ts';
import { deleteFile, discardUpload, type FailureReason } from './discard.ts';
import { EXPIRY_LEASE, expireIdleUploads, sweepIfHolder } from './expiry.ts';
import { lockIfFree } from './lock-if-free.ts';
import { finalizeUpload, type FinishingUpload } from './finalize.ts';
import { checkDeclared } from './content-type.ts';
import { concatenate, markPartial, type FinalUpload } from './concat.ts';
import { parseUploadMetadata } from './metadata.ts';
import { ObservedStore } from './observed-store.ts';
import { claimForPatch, reservationIsFinal, reserveAtCreation, settleReservation, type CreationRequest, type PatchRequest } from './quota.ts';
import { finishAbandonedDeletions, recordMoved, repairInterrupted, type Repaired } from './repair.ts';
import { createDigests, type ChunkWatcher, type Digests, type ObservedWrite } from './sha256.ts';
import { sniffWrite, type TypeSniff, type TypesAtEnd } from './type-sniffer.ts';

export type { HookDeps } from './deps.ts';
export type { FailureReason } from './discard.ts';
export type { FinishingUpload } from './finalize.ts';
export type { FinalUpload } from './concat.ts';
export type { PatchRequest } from './quota.ts';

/**
 * What the lifecycle reports as it runs (server/metrics.ts counts and logs it). `step` wraps one
 * step to time it; the others are told once an outcome is known.
 */
export interface LifecycleObserver {
  step<T>(name: 'create' | 'finish' | 'expire', run: () => Promise<T> | T): Promise<T> | T;
  /** `requestId`: the request that caused it, when one did. */
  created(row: UploadRow, requestId: string | undefined): void;
  finished(file: FileRow): void;
  finishFailed(uploadId: string, error: unknown, requestId: string | undefined): void;
  /** Terminated by its client, or its creation failed. */
  discarded(uploadId: string, requestId: string | undefined): void;
  expired(count: number): void;
  /** A creation or a PATCH was refused (quota_exceeded is counted). */
  refused(error: unknown): void;
}

export const unobserved: LifecycleObserver = {
  step: (_name, run) => run(),
  created() {},
  finished() {},
  finishFailed() {},
  discarded() {},
  expired() {},
  refused() {},
};

export interface Lifecycle {
  /** Upload requests in flight: per-user admission (routes/uploads.ts), and what expiry skips. */
  readonly requests: UploadRequests;
  /** The tus store every upload byte is written through (hooks/observed-store.ts). */
  readonly store: ObservedStore;
  create(caller: Caller, metadata: Record<string, string | null> | undefined, req: CreationRequest): Promise<UploadRow>;
  /** Before a PATCH: records activity for expiry and claims what it may write. Returns the size bound. */
  beforePatch(row: UploadRow, req: PatchRequest): Promise<number>;
  /** After a creation or PATCH that did not finish the upload: the reservation follows what is stored. */
  afterWrite(row: UploadRow): Promise<void>;
  finish(upload: FinishingUpload): Promise<FileRow>;
  /**
   * An unfinished upload whose bytes storage no longer holds as an upload: if a finish moved them to
   * their key and could not record them (its transaction failed), the file is recorded now.
   * Call it holding the upload's lock.
   */
  recover(uploadId: string): Promise<void>;
  /** Removes an unfinished upload; `reason` goes into the upload.failed event. */
  discard(uploadId: string, reason: FailureReason, requestId?: string): Promise<void>;
  /**
   * An upload that could not be discarded (its storage cannot be reached) whose client will not
   * come back: from now on it holds none of the user's quota; expiry removes it and its bytes.
   */
  releaseReservation(uploadId: string): Promise<void>;
  /** DELETE /v1/files/{key}: the bytes, then the record with its file.deleted event (hooks/discard.ts). */
  deleteFile(file: FileRow, requestId?: string): Promise<void>;
  /** Whether finishing this upload stops short of a file (Upload-Concat: partial). */
  isPartial(uploadId: string): Promise<boolean>;
  /** tus concatenation: the final upload, assembled from partial uploads and finished (hooks/concat.ts). */
  concatenate(final: FinalUpload): Promise<FileRow>;
  expire(): Promise<number>;
  repair(): Promise<Repaired>;
  /** Returns the stop: no more sweeps, and the expiry lease is handed to the next instance that asks. */
  startHousekeeping(sweepIntervalMs: number): () => Promise<void>;
}

export interface LifecycleParts {
  locker: Locker;
  requests: UploadRequests;
  observer: LifecycleObserver;
  /** Names this instance where instances share work: the expiry lease, the start-up repair. */
  instanceId: string;
  /**
   * The other instances that may be working now (on PostgreSQL: those seen within a heartbeat's
   * lapse; on SQLite none). The start-up repair leaves alone what they may have in flight.
   */
  liveOthers(): Promise<Set<string>>;
}

export function createLifecycle(deps: HookDeps, parts: LifecycleParts): Lifecycle {
  const { locker, requests, observer } = parts;
  const free = lockIfFree(locker, requests);
  const atEnd: TypesAtEnd = new Map();
  // What the process holds of an unfinished upload between requests, forgotten when it is removed.
  const hashes = createDigests(deps.storage, deps.repo);
  const digests: typeof hashes = {
    ...hashes,
    discard(uploadId) {
      hashes.discard(uploadId);
      atEnd.delete(uploadId);
    },
  };
  // Expiry only needs to know an upload is alive to within a small part of its idle limit:
  // touching on every PATCH cost a write transaction each (a client sending 500 KiB chunks
  // makes thousands per GiB). At most 1/100 of UPLOAD_EXPIRY_SECONDS, and never over a minute.
  const touchEveryMs = Math.min(60_000, deps.uploadExpirySeconds * 10);

  async function observeWrite(uploadId: string, offset: number, source: Readable): Promise<WriteWatch> {
    const sniff = await sniffWrite(deps, uploadId, offset, atEnd);
    const watch = new WriteWatch(deps, digests, uploadId, touchEveryMs, sniff);
    const digest = await digests.observe(uploadId, offset, source, watch);
    watch.digest = digest;
    // A refusal ends the stream going to storage, not tus's source: tus would answer at once,
    // before the upload is discarded; this way the store's write returns first and settle runs
    // (and throws the refusal).
    sniff.listen(digest);
    return watch;
  }

  const store = new ObservedStore(deps.storage.tusStore, { observeWrite });

  async function create(caller: Caller, metadata: Record<string, string | null> | undefined, req: CreationRequest): Promise<UploadRow> {
    return await observer.step('create', async () => {
      try {
        const row = await createRow(caller, metadata, req);
        observer.created(row, req.requestId);
        return row;
      } catch (error) {
        observer.refused(error);
        throw error;
      }
    });
  }

  async function createRow(caller: Caller, metadata: Record<string, string | null> | undefined, req: CreationRequest): Promise<UploadRow> {
    const meta = parseUploadMetadata(metadata, caller);
    // A partial upload's type and events belong to its final upload (hooks/concat.ts).
    if (!req.partial) checkDeclared(deps.typePolicy, meta);
    return deps.repo.atomically(async (tx) => {
      const row = await reserveAtCreation({ ...deps, repo: tx }, meta, req);
      if (req.partial) {
        await markPartial(tx, row);
        return row;
      }
      await tx.outbox.emit('upload.created', row.id, {
        upload_id: row.id, user_id: row.user_id, filename: row.filename, folder: row.folder,
        content_type: row.content_type, size: row.length,
      });
      return row;
    });
  }

  async function finish(upload: FinishingUpload): Promise<FileRow> {
    return observer.step('finish', async () => {
      try {
        const file = await finalizeUpload(deps, digests, upload, atEnd);
        observer.finished(file);
        return file;
      } catch (error) {
        observer.finishFailed(upload.id, error, upload.requestId);
        throw error;
      }
    });
  }

  async function discard(uploadId: string, reason: FailureReason, requestId?: string): Promise<void> {
    await discardUpload(deps, digests, uploadId, reason);
    observer.discarded(uploadId, requestId);
  }

  const lifecycle: Lifecycle = {
    requests,
    store,
    create,
    async beforePatch(row, req) {
      const now = deps.now();
      if (now - row.touched_at >= touchEveryMs) {
        await deps.repo.touchUpload(row.id, now);
        row.touched_at = now; // what Upload-Expires is computed from (server/uploads/service.ts)
      }
      try {
        return await claimForPatch(deps, row, req);
      } catch (error) {
        observer.refused(error);
        throw error;
      }
    },
    async afterWrite(row) {
      // Nothing can change for a length reserved whole: skips a read of the store and a write.
      if (reservationIsFinal(row) || !(await deps.repo.getUpload(row.id))) return;
      const stored = await store.getUpload(row.id);
      await settleReservation(deps, row.id, { offset: stored.offset, size: stored.size });
    },
    finish,
    async recover(uploadId) {
      const row = await deps.repo.getUpload(uploadId);
      if (row) await recordMoved(deps, digests, row);
    },
    discard,
    releaseReservation(uploadId) {
      // Settled as an upload that stored nothing: its length stays, its reservation is 0.
      return settleReservation(deps, uploadId, { offset: 0, size: undefined });
    },
    deleteFile(file, requestId) {
      return deleteFile(deps, file, parts.instanceId, requestId);
    },
    isPartial(uploadId) {
      return deps.repo.isPartialUpload(uploadId);
    },
    concatenate(final) {
      return concatenate(deps, digests, locker, { create, finish, discard, store }, final);
    },
    async expire() {
      const count = await sweepIfHolder(deps, parts.instanceId, async () => {
        // What a gone instance was deleting is finished by the sweeping one.
        await finishAbandonedDeletions(deps, { instanceId: parts.instanceId, liveOthers: await parts.liveOthers() })
          .catch((error: unknown) => deps.log.warn({ err: error }, 'could not finish the deletions of a gone instance; next sweep'));
        return observer.step('expire', () => expireIdleUploads(deps, digests, free));
      });
      observer.expired(count);
      return count;
    },
    async repair() {
      return repairInterrupted(deps, digests, { instanceId: parts.instanceId, lockIfFree: free, liveOthers: await parts.liveOthers() });
    },
    startHousekeeping(sweepIntervalMs) {
      const timer = setInterval(() => {
        lifecycle.expire().catch((error: unknown) => deps.log.error({ err: error }, 'upload expiry failed'));
      }, sweepIntervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await deps.repo.leases.release(EXPIRY_LEASE, parts.instanceId).catch((error: unknown) =>
          deps.log.warn({ err: error }, 'could not hand back the expiry lease; it ends by itself'));
      };
    },
  };
  return lifecycle;
}

/**
 * One write as the lifecycle watches it. The SHA-256 tap shows it each chunk on its way to storage,
 * for the type sniffer and the activity touch (a PATCH streaming for longer than the expiry keeps
 * its upload alive as its bytes arrive — beforePatch recorded its start — so no instance takes it
 * for idle meanwhile or right after); the store then settles it. One object per write rather than
 * listeners and closures, for what a held PATCH keeps alive.
 */
class WriteWatch implements ChunkWatcher {
  /** The tap (set once it is built, before any chunk can reach it). */
  digest: ObservedWrite | undefined;
  #touched: number;

  constructor(
    private readonly deps: HookDeps,
    private readonly digests: Digests,
    private readonly uploadId: string,
    private readonly touchEveryMs: number,
    private readonly sniff: TypeSniff,
  ) {
    this.#touched = deps.now();
  }

  /** What goes to storage. */
  get stream(): Readable {
    return this.digest!.stream;
  }

  chunk(bytes: Buffer): void {
    this.sniff.chunk(bytes);
    const now = this.deps.now();
    if (now - this.#touched < this.touchEveryMs) return;
    this.#touched = now;
    const { deps, uploadId } = this;
    deps.repo.touchUpload(uploadId, now).catch((error: unknown) => deps.log.warn({ err: error, upload_id: uploadId }, 'could not record activity on an upload'));
  }

  /** With the offset the store reports (null when the write failed); throws a type refusal. */
  async settle(newOffset: number | null): Promise<void> {
    const { deps, uploadId } = this;
    await this.digest!.settle(newOffset);
    const refusal = await this.sniff.settle(newOffset);
    if (refusal) {
      deps.log.info({ event: 'upload.refused', upload_id: uploadId, reason: refusal.code }, refusal.message);
      await discardUpload(deps, this.digests, uploadId, 'type_not_allowed');
      throw refusal;
    }
  }
}
