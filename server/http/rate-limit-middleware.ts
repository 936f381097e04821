// Rate limits on what needs no account (signed GETs, batch ZIP downloads: anyone holding a link) and
// on failed authentication, so a leaked link or a token-guessing script cannot hammer the server:
// 429 `rate_limited` with Retry-After. Limits and defaults: config.ts (RATE_LIMIT_*), docs/operations.md.
// Requests from this machine straight to the server (`local`) are not limited: local tools and
// health checks. Anything relayed by a proxy is: by the client's own address when the proxy is
// trusted (EDGE_SECRET, TRUSTED_PROXIES), by the proxy's address otherwise (server/http/client-address.ts).
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { TokenBuckets } from './rate-limit.ts';
import type { RequestEnv } from './request-context.ts';

function refuse(metrics: Metrics, limit: string, retryAfter: number, what: string): never {
  metrics.rateLimited.inc({ limit });
  throw new AppError('rate_limited', `too many ${what}; retry in ${retryAfter} s`, { 'Retry-After': String(retryAfter) });
}

/**
 * Downloads through a link: one bucket per client address, one per link (its path and signature),
 * so neither one client nor a link spread across many clients goes beyond the limit.
 */
export function downloadLimit(deps: { perClient: TokenBuckets; perLink: TokenBuckets; metrics: Metrics }): MiddlewareHandler<RequestEnv> {
  return async (c, next) => {
    if ((c.req.method !== 'GET' && c.req.method !== 'HEAD') || c.get('local')) return next();
    const client = deps.perClient.take(c.get('clientIp'));
    if (client > 0) refuse(deps.metrics, 'download_client', client, 'downloads from your address');
    const link = deps.perLink.take(`${c.req.path}?${c.req.query('sig') ?? ''}`);
    if (link > 0) refuse(deps.metrics, 'download_link', link, 'downloads of this link');
    return next();
  };
}

/**
 * Failed authentication (401; 403 from generate-token, which only the service token may call)
 * costs a token of the client's bucket; once it is empty, credentialed requests from that address
 * are refused before any token is checked, until it refills. The rule for the Hono middleware
 * below and the upload fast path (server/upload-fast-path.ts).
 */
export interface AuthFailureRule {
  /** Before the request is handled: throws `rate_limited` while the client's bucket is empty. */
  admit(clientIp: string, local: boolean): void;
  /** Once it is answered: a failed authentication takes a token. */
  answered(clientIp: string, local: boolean, status: number, path: string): void;
}

export function authFailureRule(deps: { buckets: TokenBuckets; metrics: Metrics }): AuthFailureRule {
  return {
    admit(ip, local) {
      if (local) return;
      const wait = deps.buckets.peek(ip);
      if (wait > 0) refuse(deps.metrics, 'auth_failure', wait, 'failed authentications from your address');
    },
    answered(ip, local, status, path) {
      if (local) return;
      if (status === 401 || (status === 403 && path === '/v1/files/generate-token')) deps.buckets.take(ip);
    },
  };
}

/** The rule as Hono middleware. */
export function authFailureLimit(rule: AuthFailureRule): MiddlewareHandler<RequestEnv> {
  // Not async: a request this limit does not count holds nothing while it runs (server/http/in-sequence.ts).
  return (c, next) => {
    const ip = c.get('clientIp');
    const local = c.get('local');
    rule.admit(ip, local);
    if (local) return next();
    return next().then(() => rule.answered(ip, local, c.res.status, c.req.path));
  };
}
