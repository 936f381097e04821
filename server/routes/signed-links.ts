// Signed links (docs/api.md, "Signed links"): GET /v1/files/signed-url mints one, GET/HEAD /get/{encoded}
// serves its bytes. Registered at start by method and path; the handlers (signed-links-handlers.ts)
// are imported on the first request to one of them (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import type { RequestEnv } from '../http/request-context.ts';
import { SIGNED_LINK_ROUTES } from './api-route-paths.ts';
import { lazyRoutes } from './lazy-routes.ts';
import type { SignedLinkDeps } from './signed-links-handlers.ts';

export type { SignedLinkDeps };

/** GET /v1/files/signed-url (behind auth). */
export function signedUrlRoute(deps: SignedLinkDeps): Hono<AuthEnv> {
  return lazyRoutes([SIGNED_LINK_ROUTES.url], async () => (await import('./signed-links-handlers.ts')).signedUrlHandlers(deps));
}

/** GET and HEAD /get/{base64url(key)}?exp=&disposition=&sig= (no account needed). */
export function signedGetRoute(deps: SignedLinkDeps): Hono<RequestEnv> {
  return lazyRoutes([SIGNED_LINK_ROUTES.get], async () => (await import('./signed-links-handlers.ts')).signedGetHandlers(deps));
}
