// What every lifecycle step receives: typed dependencies, never process.env.
import type { Logger } from 'pino';
import type { TypePolicy } from '../server/config.ts';
import type { Repo } from '../server/db/repo.ts';
import type { Storage } from '../server/storage/types.ts';

export interface HookDeps {
  repo: Repo;
  storage: Storage;
  quotaBytes: number;
  maxUploadBytes: number;
  uploadExpirySeconds: number;
  /** ALLOWED_TYPES / DENIED_TYPES (hooks/content-type.ts). */
  typePolicy: TypePolicy;
  now: () => number;
  log: Logger;
}
