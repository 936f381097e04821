// Batch ZIP (docs/api.md, "Batch ZIP"): POST /v1/files/batch-download makes a link, GET/HEAD
// /v1/files/batch-download/{token} streams its ZIP. Registered at start by method and path; the
// handlers (batch-download-handlers.ts) are imported on the first request to one of them
// (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import { lazyRoutes, type RoutePath } from './lazy-routes.ts';
import type { SignedLinkDeps } from './signed-links.ts';

export const BATCH_ROUTES = {
  /** Behind auth, under /v1. */
  token: { method: 'POST', path: '/files/batch-download' },
  /** No account needed, under /v1/files/batch-download. */
  download: { method: ['GET', 'HEAD'], path: '/:token' },
} as const satisfies Record<string, RoutePath>;

/** Keys travel inside the signed token, which must fit in a URL (link-signing.ts). */
export const MAX_BATCH_KEYS = 200;

/** What a signed link needs (the same keys, gate and damage marks), with the batch link's lifetime. */
export type BatchDeps = Omit<SignedLinkDeps, 'defaultTtlSeconds' | 'offload'> & { ttlSeconds: number };

/** POST /v1/files/batch-download (behind auth). */
export function batchTokenRoute(deps: BatchDeps): Hono<AuthEnv> {
  return lazyRoutes([BATCH_ROUTES.token], async () => (await import('./batch-download-handlers.ts')).batchTokenHandlers(deps));
}

/** GET and HEAD /v1/files/batch-download/{token} (no account needed). */
export function batchDownloadRoute(deps: BatchDeps): Hono {
  return lazyRoutes([BATCH_ROUTES.download], async () => (await import('./batch-download-handlers.ts')).batchDownloadHandlers(deps));
}
