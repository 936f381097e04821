// What every lifecycle step receives: typed dependencies, never process.env.
import type { Logger } from 'pino';
import type { TypePolicy } from '../server/config.ts';
import type { Repo } from '../server/db/repo.ts';
import type { Storage } from '../server/storage/types.ts';
import type { EventSink } from '../server/db/events.ts';
import type { ScanQueue } from '../server/scan/queue.ts';

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
