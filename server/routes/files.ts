// Files API (docs/api.md "Files"): list, metadata, delete, usage. Registered at start by method and
// path; the handlers (files-handlers.ts) are imported on the first request to one of them
// (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import { FILE_ROUTES } from './api-route-paths.ts';
import type { FileRouteDeps } from './files-handlers.ts';
import { lazyRoutes } from './lazy-routes.ts';

export type { FileRouteDeps };

export function fileRoutes(deps: FileRouteDeps): Hono<AuthEnv> {
  return lazyRoutes(Object.values(FILE_ROUTES), async () => (await import('./files-handlers.ts')).fileHandlers(deps));
}
