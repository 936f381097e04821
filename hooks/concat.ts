// tus concatenation extension. A partial upload (Upload-Concat: partial) is an ordinary upload of
// its owner: it reserves its length against the quota, expires when idle and can be terminated,
// but it never becomes a file, has no type of its own and announces nothing (its bytes are a slice
// of someone's file; the final upload is what clients and webhooks see).
//
// A final upload (Upload-Concat: final;<url> <url> …) names complete partial uploads of the same
// user. Their bytes are appended, in order, to a new upload through the same store write as any
// PATCH, so the final file's SHA-256 and type are computed as they stream; then it finishes like
// any upload (sha256 metadata check, type check, move, one record, scan, upload.finished) and the
// partial uploads are removed. tus 1.0 (concatenation): "the Server MUST respond with 404 Not
// Found" when a partial upload cannot be found; someone else's counts as not found.
//
// Quota: while the final is assembled the partial uploads keep their reservations and the final
// reserves nothing, so the bytes are counted once; the finish turns the final into a file and the
// partial uploads' reservations go with their rows. A crash in between leaves the partial uploads
// (the client may retry the final) and a final upload that expiry removes.
import { Upload, type DataStore, type Locker } from '@tus/utils';
import type { Caller } from '../server/auth/caller.ts';
import type { Repository } from '../server/db/contract.ts';
import type { FileRow, UploadRow } from '../server/db/repo.ts';
import { AppError } from '../server/errors.ts';
import type { HookDeps } from './deps.ts';
import type { FinishingUpload } from './finalize.ts';
import { parseUploadMetadata } from './metadata.ts';
import type { CreationRequest } from './quota.ts';
import { lockUpload } from './upload-lock.ts';
import type { Digests } from './sha256.ts';


/** On the creation transaction `tx` of a partial upload: marked, and its type never sniffed. */
export async function markPartial(tx: Repository, row: UploadRow): Promise<void> {
  await tx.markPartialUpload(row.id);
  await tx.setUploadType(row.id, null);
  row.type_checked = 1;
}

export interface FinalUpload {
  caller: Caller;
  metadata: Record<string, string | null> | undefined;
  partialIds: string[];
  finalId: string;
  /** The request assembling it, for the log lines of its creation and finish. */
  requestId?: string;
}

export interface ConcatSteps {
  create(caller: Caller, metadata: Record<string, string | null> | undefined, req: CreationRequest): Promise<UploadRow>;
  finish(upload: FinishingUpload): Promise<FileRow>;
  discard(uploadId: string, reason: 'creation_failed', requestId?: string): Promise<void>;
  /** The store every upload byte is written through (hooks/observed-store.ts). */
  store: DataStore;
}

export async function concatenate(deps: HookDeps, digests: Digests, locker: Locker, steps: ConcatSteps, final: FinalUpload): Promise<FileRow> {
  const { partialIds, finalId } = final;
  if (partialIds.length === 0) throw new AppError('invalid_concatenation', 'Upload-Concat: final; must name at least one partial upload');
  if (new Set(partialIds).size !== partialIds.length) throw new AppError('invalid_concatenation', 'a partial upload is named twice');
  const userId = parseUploadMetadata(final.metadata, final.caller).userId;
  const { store } = steps;

  const locks = await lockAll(locker, [...partialIds].sort());
  try {
    const sizes: number[] = [];
    for (const id of partialIds) {
      const row = await deps.repo.getUpload(id);
      if (!row || row.user_id !== userId) throw new AppError('not_found', `no such partial upload: ${id}`);
      if (!(await deps.repo.isPartialUpload(id))) throw new AppError('invalid_concatenation', `${id} was not created with Upload-Concat: partial`);
      // The row without its bytes (lost to a crash) is no upload either.
      const stored = await store.getUpload(id).catch(() => {
        throw new AppError('not_found', `no such partial upload: ${id}`);
      });
      if (stored.size === undefined || stored.offset !== stored.size) {
        throw new AppError('invalid_concatenation', `partial upload ${id} is not complete (${stored.offset} bytes of ${stored.size ?? 'an unknown length'})`);
      }
      sizes.push(stored.size);
    }
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > deps.maxUploadBytes) throw new AppError('upload_too_large', `the concatenation is ${total} bytes; the limit is ${deps.maxUploadBytes}`);

    await steps.create(final.caller, final.metadata, {
      uploadId: finalId, length: total, bodyLength: null, hasBody: false, reserve: 0, replaces: partialIds.length, requestId: final.requestId,
    });
    let file: FileRow;
    try {
      await store.create(new Upload({ id: finalId, size: total, offset: 0, metadata: final.metadata ?? {} }));
      let offset = 0;
      for (const [i, id] of partialIds.entries()) {
        if (sizes[i] === 0) continue;
        const bytes = await deps.storage.readUpload(id, 0, sizes[i]!);
        if (!bytes) throw new Error(`the bytes of partial upload ${id} cannot be read`);
        offset = await store.write(bytes, finalId, offset);
      }
      if (offset !== total) throw new Error(`concatenated ${offset} bytes, expected ${total}`);
      file = await steps.finish({ id: finalId, size: total, requestId: final.requestId });
    } catch (error) {
      await steps.discard(finalId, 'creation_failed', final.requestId);
      // The content itself was refused (type, declared sha256): the slices of it go too.
      if (error instanceof AppError && error.status < 500) await removePartials(deps, digests, partialIds);
      throw error;
    }
    await removePartials(deps, digests, partialIds);
    return file;
  } finally {
    for (const lock of locks) await lock.unlock();
  }
}

async function removePartials(deps: HookDeps, digests: Digests, ids: string[]): Promise<void> {
  for (const id of ids) {
    digests.discard(id);
    await deps.storage.removeUpload(id);
    await deps.repo.deleteUpload(id);
  }
}

async function lockAll(locker: Locker, ids: string[]): Promise<Array<{ unlock(): Promise<void> }>> {
  const held: Array<{ unlock(): Promise<void> }> = [];
  try {
    for (const id of ids) held.push(await lockUpload(locker, id, 'a partial upload is busy; retry shortly'));
  } catch (error) {
    for (const lock of held) await lock.unlock();
    throw error;
  }
  return held;
}
