// The original Stream-Line server's upload calls (POST /v1/files/init, /part, /complete), kept so
// that clients written against its guide run unchanged; docs/migrating.md maps each call to tus.
// Registered at start by method and path; the handlers (legacy-uploads-handlers.ts) are imported
// on the first request to one of them (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import type { Services } from '../services.ts';
import { LEGACY_ROUTES } from './api-route-paths.ts';
import { lazyRoutes } from './lazy-routes.ts';
import type { LegacyUploadDeps } from './legacy-uploads-handlers.ts';
import type { AppFetch } from './legacy-tus.ts';

/** `fetchApp` is the whole app's fetch: the calls become requests to its tus endpoint. */
export function legacyUploadRoutes(services: Pick<Services, 'repo' | 'config'>, fetchApp: AppFetch): Hono<AuthEnv> {
  const deps: LegacyUploadDeps = { repo: services.repo, parts: services.repo.legacyParts, fetchApp, maxBodyBytes: services.config.legacyMaxBodyBytes };
  return lazyRoutes(Object.values(LEGACY_ROUTES), async () => (await import('./legacy-uploads-handlers.ts')).legacyUploadHandlers(deps));
}
