// What every lifecycle step receives: typed dependencies, never process.env.
import type { Logger } from 'pino';
import type { TypePolicy } from '../server/config.ts';
import type { Repository } from '../server/db/contract.ts';
import type { Storage } from '../server/storage/types.ts';
import type { ScanQueue } from '../server/scan/queue.ts';

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
