// What every lifecycle step receives: typed dependencies, never process.env.
import type { Logger } from 'pino';
import type { TypePolicy } from '../server/config.ts';
import type { Repository } from '../server/db/contract.ts';
import type { Storage } from '../server/storage/types.ts';

export type EventType = 'upload.created' | 'upload.finished' | 'upload.failed' | 'file.deleted' | 'file.scanned';

/**
 * The virus-scan queue (server/scan/worker.ts). When enabled, a finished file is recorded as
 * 'pending' and enqueue() is called on the transaction `tx` that makes it ready.
 *
 * Events for webhooks (server/webhooks/) go through `tx.outbox.emit` of the transaction of the
 * change they report, so an event exists if and only if its change does. `subject` is the upload
 * id, constant from upload.created to file.deleted: events with one subject reach each receiver in
 * the order they were emitted.
 */
export interface ScanQueue {
  readonly enabled: boolean;
  enqueue(tx: Repository, key: string): Promise<void>;
}

export const noScans: ScanQueue = { enabled: false, async enqueue() {} };

export interface HookDeps {
  repo: Repository;
  storage: Storage;
  quotaBytes: number;
  maxUploadBytes: number;
  /** UPLOAD_MAX_UNFINISHED_PER_USER: creations past it are refused (hooks/quota.ts). */
  maxUnfinishedUploads: number;
  uploadExpirySeconds: number;
  /** ALLOWED_TYPES / DENIED_TYPES (hooks/content-type.ts). */
  typePolicy: TypePolicy;
  scans: ScanQueue;
  now: () => number;
  log: Logger;
}
