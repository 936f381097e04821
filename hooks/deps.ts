// What every lifecycle step receives: typed dependencies, never process.env.
import type { Logger } from 'pino';
import type { TypePolicy } from '../server/config.ts';
import type { Repo } from '../server/db/repo.ts';
import type { Storage } from '../server/storage/types.ts';

export type EventType = 'upload.created' | 'upload.finished' | 'upload.failed' | 'file.deleted' | 'file.scanned';

/**
 * Where lifecycle steps report what happened, for webhooks (server/webhooks/). emit() writes to a
 * durable outbox: call it inside the SQLite transaction of the change it reports, so the event
 * exists if and only if the change does. It never throws for delivery reasons and never changes
 * the answer a client gets. `subject` is the upload id, constant from upload.created to
 * file.deleted: events with one subject reach each receiver in the order they were emitted.
 */
export interface EventSink {
  emit(type: EventType, subject: string, data: Record<string, unknown>): void;
}

export const noEvents: EventSink = { emit() {} };

/**
 * The virus-scan queue (server/scan/worker.ts). When enabled, a finished file is recorded as
 * 'pending' and enqueue() is called inside the transaction that makes it ready.
 */
export interface ScanQueue {
  readonly enabled: boolean;
  enqueue(key: string): void;
}

export const noScans: ScanQueue = { enabled: false, enqueue() {} };

export interface HookDeps {
  repo: Repo;
  storage: Storage;
  quotaBytes: number;
  maxUploadBytes: number;
  /** UPLOAD_MAX_UNFINISHED_PER_USER: creations past it are refused (hooks/quota.ts). */
  maxUnfinishedUploads: number;
  uploadExpirySeconds: number;
  /** ALLOWED_TYPES / DENIED_TYPES (hooks/content-type.ts). */
  typePolicy: TypePolicy;
  events: EventSink;
  scans: ScanQueue;
  now: () => number;
  log: Logger;
}
