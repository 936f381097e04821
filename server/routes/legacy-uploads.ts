// The original Stream-Line server's upload calls (POST /v1/files/init, /part, /complete), kept so
// that clients written against its guide run unchanged; docs/migrating.md maps each call to tus.
// Registered at start by method and path; the handlers (legacy-uploads-handlers.ts) are imported
// on the first request to one of them (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import type { LegacyParts, Repository } from '../db/contract.ts';
import type { Services } from '../services.ts';
import { lazyRoutes, type RoutePath } from './lazy-routes.ts';
import type { AppFetch } from './legacy-tus.ts';

/** Under /v1, behind auth. */
export const LEGACY_ROUTES = {
  init: { method: 'POST', path: '/files/init' },
  part: { method: 'POST', path: '/files/part' },
  complete: { method: 'POST', path: '/files/complete' },
} as const satisfies Record<string, RoutePath>;

/** Paths whose bodies carry file bytes, read against LEGACY_API_MAX_BODY_BYTES instead of BODY_LIMIT_BYTES. */
export const LEGACY_UPLOAD_PATHS: readonly string[] = Object.values(LEGACY_ROUTES).map((route) => `/v1${route.path}`);

export interface LegacyUploadDeps {
  repo: Repository;
  parts: LegacyParts;
  fetchApp: AppFetch;
  maxBodyBytes: number;
}

/** `fetchApp` is the whole app's fetch: the calls become requests to its tus endpoint. */
export function legacyUploadRoutes(services: Pick<Services, 'repo' | 'config'>, fetchApp: AppFetch): Hono<AuthEnv> {
  const deps: LegacyUploadDeps = { repo: services.repo, parts: services.repo.legacyParts, fetchApp, maxBodyBytes: services.config.legacyMaxBodyBytes };
  return lazyRoutes(Object.values(LEGACY_ROUTES), async () => (await import('./legacy-uploads-handlers.ts')).legacyUploadHandlers(deps));
}
