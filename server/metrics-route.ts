// GET /metrics: the Prometheus exposition. Who may read it: a scraper presenting
// `Authorization: Bearer <METRICS_TOKEN>` (when configured), or a process on this machine talking
// to the server directly (`local`: server/http/client-address.ts decides, so a request relayed by
// a proxy — which also arrives from loopback — never qualifies).
// Metrics name routes, users' activity and volumes: not for the public, and not worth the service
// token either, which can act for every user.
import { Hono } from 'hono';
import { createSecretCheck } from './auth/secret-check.ts';
import { AppError } from './errors.ts';
import { bearerToken } from './auth/bearer.ts';
import type { RequestEnv } from './http/request-context.ts';
import type { Metrics } from './metrics.ts';

export function metricsRoute(metrics: Metrics, metricsToken: string | undefined): Hono<RequestEnv> {
  const isMetricsToken = createSecretCheck([metricsToken]);
  const app = new Hono<RequestEnv>();
  app.get('/', async (c) => {
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) {
      const offered = bearerToken(authorization);
      if (offered === undefined || !isMetricsToken(offered)) throw new AppError('invalid_token', 'not the metrics token');
    } else if (!c.get('local')) {
      throw new AppError('forbidden', 'metrics are readable from this machine directly, or with the metrics token');
    }
    c.header('Cache-Control', 'no-store');
    return c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });
  return app;
}
