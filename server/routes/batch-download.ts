// Batch ZIP (docs/api.md, "Batch ZIP"): POST /v1/files/batch-download makes a link, GET/HEAD
// /v1/files/batch-download/{token} streams its ZIP. Registered at start by method and path; the
// handlers (batch-download-handlers.ts) are imported on the first request to one of them
// (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import { BATCH_ROUTES } from './api-route-paths.ts';
import type { BatchDeps } from './batch-download-handlers.ts';
import { lazyRoutes } from './lazy-routes.ts';

export type { BatchDeps };

/** POST /v1/files/batch-download (behind auth). */
export function batchTokenRoute(deps: BatchDeps): Hono<AuthEnv> {
  return lazyRoutes([BATCH_ROUTES.token], async () => (await import('./batch-download-handlers.ts')).batchTokenHandlers(deps));
}

/** GET and HEAD /v1/files/batch-download/{token} (no account needed). */
export function batchDownloadRoute(deps: BatchDeps): Hono {
  return lazyRoutes([BATCH_ROUTES.download], async () => (await import('./batch-download-handlers.ts')).batchDownloadHandlers(deps));
}
