// CORS for browser clients on other origins: Uppy and tus-js-client usually run on the app's own
// origin, not the upload server's.
// CORS_ORIGINS lists the origins that may use the API with the user's cookie: they get their
// origin echoed and `Access-Control-Allow-Credentials: true`. `*` lets any page call the API with
// a token it holds itself (Bearer, service token) — `Access-Control-Allow-Origin: *` and never
// credentials, so a page elsewhere cannot ride on a signed-in user's cookie.
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { HEADERS as TUS_HEADERS } from '@tus/utils';

const UPLOAD_EXTENSION_HEADERS = ['Upload-Checksum', 'Upload-Complete', 'Upload-Draft-Interop-Version'];

const SHARED = {
  allowMethods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
  // tus 1.0 with its checksum extension, the IETF resumable-upload draft (docs/tus-extensions.md), ours, Range's.
  allowHeaders: [...TUS_HEADERS, ...UPLOAD_EXTENSION_HEADERS, 'X-Service-Token', 'If-None-Match', 'If-Range', 'Range'],
  // Browsers only let a page read the headers listed here: every tus header, ours, and Range's.
  exposeHeaders: [
    ...TUS_HEADERS, ...UPLOAD_EXTENSION_HEADERS, 'Tus-Checksum-Algorithm', 'Upload-Limit', 'Upload-Expires',
    'X-File-Key', 'Retry-After', 'Content-Range', 'Content-Disposition', 'ETag',
  ],
  maxAge: 86400,
};

/** undefined when no origin is allowed (CORS_ORIGINS unset). */
export function corsFor(origins: readonly string[]): MiddlewareHandler | undefined {
  const listed = origins.filter((origin) => origin !== '*');
  const any = origins.includes('*');
  if (listed.length === 0 && !any) return undefined;
  const credentialed = cors({ ...SHARED, origin: listed, credentials: true });
  // Any other origin: `*` without credentials, or (no `*`) no Access-Control-Allow-Origin at all.
  const others = cors({ ...SHARED, origin: any ? '*' : listed, credentials: false });
  return async (c, next) => {
    // Hono's cors() answers every OPTIONS as a preflight; a plain OPTIONS is tus discovery
    // (Tus-Version, Tus-Extension, Tus-Max-Size) and must reach tus.
    if (c.req.method === 'OPTIONS' && !c.req.header('access-control-request-method')) return next();
    const origin = c.req.header('origin');
    if (origin !== undefined && listed.includes(origin)) return credentialed(c, next);
    // The answer to `*` still depends on the Origin when some origins are listed: caches key on it.
    if (any && listed.length > 0) c.header('Vary', 'Origin', { append: true });
    return others(c, next);
  };
}
