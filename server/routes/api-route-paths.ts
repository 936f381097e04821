// The paths of the JSON API's routes, said once: the routes register them at start (lazy-routes.ts)
// and their handlers, loaded on the first request, register their real handlers at the same paths.
// Apart from both, so that neither imports the other back.
import type { RoutePath } from './lazy-routes.ts';

/** The files API, under /v1, behind auth (files.ts). */
export const FILE_ROUTES = {
  list: { method: 'GET', path: '/files/all' },
  metadata: { method: 'GET', path: '/files/metadata/:key{.+}' },
  remove: { method: 'DELETE', path: '/files/:key{.+}' },
  usage: { method: 'GET', path: '/usage' },
} as const satisfies Record<string, RoutePath>;

/** User tokens minted for services, under /v1 (tokens.ts). */
export const TOKEN_ROUTES = {
  generate: { method: 'POST', path: '/files/generate-token' },
} as const satisfies Record<string, RoutePath>;

/** Signed links (signed-links.ts). */
export const SIGNED_LINK_ROUTES = {
  /** Behind auth, under /v1. */
  url: { method: 'GET', path: '/files/signed-url' },
  /** No account needed, under /get. */
  get: { method: ['GET', 'HEAD'], path: '/:encoded' },
} as const satisfies Record<string, RoutePath>;

/** Batch downloads (batch-download.ts). */
export const BATCH_ROUTES = {
  /** Behind auth, under /v1. */
  token: { method: 'POST', path: '/files/batch-download' },
  /** No account needed, under /v1/files/batch-download. */
  download: { method: ['GET', 'HEAD'], path: '/:token' },
} as const satisfies Record<string, RoutePath>;

/** Keys travel inside the signed token, which must fit in a URL (link-signing.ts). */
export const MAX_BATCH_KEYS = 200;

/** The original API's uploads (legacy-uploads.ts). */
export const LEGACY_ROUTES = {
  init: { method: 'POST', path: '/files/init' },
  part: { method: 'POST', path: '/files/part' },
  complete: { method: 'POST', path: '/files/complete' },
} as const satisfies Record<string, RoutePath>;

/** Paths whose bodies carry file bytes, read against LEGACY_API_MAX_BODY_BYTES instead of BODY_LIMIT_BYTES. */
export const LEGACY_UPLOAD_PATHS: readonly string[] = Object.values(LEGACY_ROUTES).map((route) => `/v1${route.path}`);
