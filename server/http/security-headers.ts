// Headers that keep a page of ours from being framed, sniffed or leaking its URL, with a Content
// Security Policy that allows only what the page itself loads. The web page (server/routes/web-page.ts)
// and the API documentation at /docs carry the same set.
import type { MiddlewareHandler } from 'hono';

/** What every page of ours allows; a page adds the sources it needs beyond its own origin. */
const BASE_POLICY = ["default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "form-action 'self'"];

export function contentSecurityPolicy(directives: readonly string[]): string {
  return [...BASE_POLICY, ...directives].join('; ');
}

// Swagger UI (server/api-docs/docs-route.ts): its bundle, init script and stylesheet from /docs
// (nothing inline: React sets styles through the CSSOM, which style-src does not govern), the
// data: images of its stylesheet; it reads /docs/openapi.json and "Try it out" calls this origin.
export const DOCS_POLICY = contentSecurityPolicy(["script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'"]);

const FIXED = {
  // frame-ancestors, for browsers too old to read it.
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export function securityHeaders(policy: string): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.res.headers.set('Content-Security-Policy', policy);
    for (const [name, value] of Object.entries(FIXED)) c.res.headers.set(name, value);
  };
}
