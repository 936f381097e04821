// Signed links (docs/api.md, "Signed links"): GET /v1/files/signed-url mints one, GET/HEAD /get/{encoded}
// serves its bytes. Registered at start by method and path; the handlers (signed-links-handlers.ts)
// are imported on the first request to one of them (lazy-routes.ts says why).
import type { Hono } from 'hono';
import type { AuthEnv } from '../auth/caller.ts';
import type { Repository } from '../db/contract.ts';
import type { RequestEnv } from '../http/request-context.ts';
import type { DamageReporter } from '../storage/damage.ts';
import type { Storage } from '../storage/types.ts';
import { lazyRoutes, type RoutePath } from './lazy-routes.ts';

export const SIGNED_LINK_ROUTES = {
  /** Behind auth, under /v1. */
  url: { method: 'GET', path: '/files/signed-url' },
  /** No account needed, under /get. */
  get: { method: ['GET', 'HEAD'], path: '/:encoded' },
} as const satisfies Record<string, RoutePath>;

export interface SignedLinkDeps {
  repo: Repository;
  storage: Storage;
  signingKeys: Buffer[];
  defaultTtlSeconds: number;
  publicUrl: () => string;
  now: () => number;
  /** Whether requests from the edge may be answered with a file for the proxy to send. */
  offload?: boolean;
  /** Virus scanning is on: only files clamd called clean are served (scan/gate.ts). */
  scanning: boolean;
  /** Marks records whose stored bytes turn out missing or of another size (storage/damage.ts). */
  damage: DamageReporter;
}

/** GET /v1/files/signed-url (behind auth). */
export function signedUrlRoute(deps: SignedLinkDeps): Hono<AuthEnv> {
  return lazyRoutes([SIGNED_LINK_ROUTES.url], async () => (await import('./signed-links-handlers.ts')).signedUrlHandlers(deps));
}

/** GET and HEAD /get/{base64url(key)}?exp=&disposition=&sig= (no account needed). */
export function signedGetRoute(deps: SignedLinkDeps): Hono<RequestEnv> {
  return lazyRoutes([SIGNED_LINK_ROUTES.get], async () => (await import('./signed-links-handlers.ts')).signedGetHandlers(deps));
}
