// Files API (docs/api.md "Files"): list, metadata, delete, usage. Registered at start by method and
// path; the handlers (files-handlers.ts) are imported on the first request to one of them
// (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import type { Repository } from '../db/contract.ts';
import type { FileRow } from '../db/repo.ts';
import { lazyRoutes, type RoutePath } from './lazy-routes.ts';

export const FILE_ROUTES = {
  list: { method: 'GET', path: '/files/all' },
  metadata: { method: 'GET', path: '/files/metadata/:key{.+}' },
  remove: { method: 'DELETE', path: '/files/:key{.+}' },
  usage: { method: 'GET', path: '/usage' },
} as const satisfies Record<string, RoutePath>;

export interface FileRouteDeps {
  repo: Repository;
  quotaBytes: number;
  /** The lifecycle's deletion (Lifecycle.deleteFile): the bytes, then the record with its event. */
  deleteFile(file: FileRow): Promise<void>;
}

export function fileRoutes(deps: FileRouteDeps): Hono<AuthEnv> {
  return lazyRoutes(Object.values(FILE_ROUTES), async () => (await import('./files-handlers.ts')).fileHandlers(deps));
}
