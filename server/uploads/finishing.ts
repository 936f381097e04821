// Finishing under the upload's lock. tus lets go of the lock before it calls onFinish, so the finish
// takes it again: a HEAD or PATCH on the upload meanwhile waits for the file instead of finding its
// bytes moved and their record not yet written (hooks/finalize.ts moves first, records after).
import type { Locker } from '@tus/utils';
import type { FinishingUpload, Lifecycle } from '../../hooks/index.ts';
import { lockUpload } from '../../hooks/upload-lock.ts';
import type { Repository } from '../db/contract.ts';
import type { FileRow } from '../db/repo.ts';

export interface Finishing {
  /** The request that stored the last byte: the file, or the one another request finished meanwhile. */
  finish(upload: Omit<FinishingUpload, 'row'>): Promise<FileRow>;
  /**
   * HEAD found every byte stored but the upload unfinished: the final PATCH's finish failed (its
   * client got an error). A HEAD must not report success for a file that was never recorded, so the
   * finish runs again; if it fails again the client gets the error and retries later.
   */
  finishOnHead(uploadId: string, response: Response, requestId?: string): Promise<Response>;
  /** Storage lost an upload the database holds: records the file a failed finish may have moved. */
  recover(uploadId: string): Promise<void>;
}

/**
 * How long the request that stored the last byte waits for the lock: what it waits for is nearly
 * always its own lock being handed back (on PostgreSQL a round trip, slow on a loaded machine).
 * Given up after the usual 3 s, a creation-with-upload would answer 423 and tus-js-client would
 * send its POST again, making a second upload of the same file.
 */
const FINISH_LOCK_WAIT_MS = 30_000;

export function createFinishing(deps: { lifecycle: Lifecycle; locker: Locker; repo: Repository }): Finishing {
  const { lifecycle, repo } = deps;

  async function withLock<T>(uploadId: string, run: () => Promise<T>, waitMs?: number): Promise<T> {
    const lock = await lockUpload(deps.locker, uploadId, 'the upload is busy; retry shortly', waitMs);
    try {
      return await run();
    } finally {
      await lock.unlock();
    }
  }

  return {
    finish: (upload) =>
      withLock(upload.id, async () => {
        const row = await repo.getUpload(upload.id);
        if (!row) {
          // Finished meanwhile by a HEAD that found every byte stored.
          const file = await repo.getFileByUploadId(upload.id);
          if (file) return file;
        }
        return lifecycle.finish({ ...upload, row });
      }, FINISH_LOCK_WAIT_MS),
    finishOnHead: (uploadId, response, requestId) =>
      withLock(uploadId, async () => {
        const row = await repo.getUpload(uploadId);
        if (!row) return response; // finished meanwhile by another request
        const file = await lifecycle.finish({ id: uploadId, size: Number(response.headers.get('upload-length')), row, requestId });
        const headers = new Headers(response.headers);
        headers.set('X-File-Key', file.key);
        return new Response(null, { status: 200, headers });
      }),
    recover: (uploadId) => withLock(uploadId, () => lifecycle.recover(uploadId)),
  };
}
