// GET /metrics: the Prometheus exposition. Who may read it: a scraper presenting
// `Authorization: Bearer <METRICS_TOKEN>` (when configured), or a process on this machine talking
// to the server directly — loopback peer, and no sign of a proxy (no X-Forwarded-For, Forwarded or
// edge header), since a request relayed by a local proxy also arrives from loopback.
// Metrics name routes, users' activity and volumes: not for the public, and not worth the service
// token either, which can act for every user.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { AppError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { EDGE_SECRET_HEADER } from './http/request-context.ts';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

export function metricsRoute(metrics: Metrics, metricsToken: string | undefined): Hono {
  const expected = metricsToken === undefined ? undefined : digest(metricsToken);
  const app = new Hono();
  app.get('/', async (c) => {
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) {
      const offered = /^Bearer +(\S+) *$/i.exec(authorization)?.[1];
      if (expected === undefined || offered === undefined || !timingSafeEqual(digest(offered), expected)) {
        throw new AppError('invalid_token', 'not the metrics token');
      }
    } else if (!isDirectLoopback(c.env as HttpBindings | undefined, c.req.raw.headers)) {
      throw new AppError('forbidden', 'metrics are readable from this machine directly, or with the metrics token');
    }
    c.header('Cache-Control', 'no-store');
    return c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });
  return app;
}

function isDirectLoopback(env: HttpBindings | undefined, headers: Headers): boolean {
  const peer = env?.incoming?.socket.remoteAddress;
  if (peer === undefined || !LOOPBACK.test(peer)) return false;
  return !headers.has('x-forwarded-for') && !headers.has('forwarded') && !headers.has(EDGE_SECRET_HEADER);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
