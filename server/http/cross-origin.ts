// Cookie-authenticated requests that change state must come from a page the server trusts (CSRF).
// A browser attaches the session cookie to a request whatever page made it; a form or a fetch
// from another origin could otherwise create uploads, delete files or mint batch links as the
// user. Bearer and service tokens are added by the caller's own code, so they need no such check.
//
// The browser says where a request comes from: `Origin` on every cross-origin request and on
// same-origin ones that change state (Fetch §3.1), and `Sec-Fetch-Site` (Fetch Metadata) in
// current browsers. Trusted: the server's own origin (PUBLIC_URL, or the Host the request was
// sent to) and origins listed in CORS_ORIGINS (`*` grants no cookie, server/http/cors.ts).
// Without either header the request did not come from a browser page, and passes.
import type { MiddlewareHandler } from 'hono';
import { presentedCredential } from '../auth/caller.ts';
import { AppError } from '../errors.ts';

export interface CrossOriginDeps {
  cookieName: string;
  corsOrigins: readonly string[];
  /** The server's public origin (PUBLIC_URL, or where it listens). */
  publicUrl: () => string;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The rule itself, for the Hono middleware below and the upload fast path
 * (server/upload-fast-path.ts): throws `origin_not_allowed` for a request it refuses.
 */
export function cookieOriginRule(deps: CrossOriginDeps): (request: Request) => void {
  const listed = new Set(deps.corsOrigins.filter((origin) => origin !== '*'));
  return (request) => {
    const headers = request.headers;
    // The method override turns a POST into a PATCH or DELETE (server/routes/uploads.ts): the
    // request changes state whichever of the two names it.
    const override = headers.get('x-http-method-override')?.toUpperCase();
    if (SAFE.has(request.method) && (override === undefined || SAFE.has(override))) return;
    if (presentedCredential(request, deps.cookieName).kind !== 'cookie') return;
    const origin = headers.get('origin') ?? undefined;
    const allowed = origin !== undefined
      ? listed.has(origin) || origin === new URL(deps.publicUrl()).origin || sameHost(origin, headers.get('host') ?? undefined)
      : fetchSiteAllows(headers.get('sec-fetch-site') ?? undefined);
    if (!allowed) {
      throw new AppError('origin_not_allowed', 'a request that changes state with the session cookie must come from this server\'s pages or an origin in CORS_ORIGINS; other clients send a Bearer token');
    }
  };
}

/** The rule as Hono middleware. */
export function cookieOriginCheck(check: (request: Request) => void): MiddlewareHandler {
  // Not async: it holds nothing while the request runs (server/http/in-sequence.ts).
  return (c, next) => {
    check(c.req.raw);
    return next();
  };
}

/** The page's origin names the host the request was sent to: the server's own page. */
function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // `null` (sandboxed frames, data: pages) and anything unparsable
  }
}

/** `same-origin`, or `none` (the user typed or bookmarked it); absent: not a browser page. */
function fetchSiteAllows(site: string | undefined): boolean {
  return site === undefined || site === 'same-origin' || site === 'none';
}
