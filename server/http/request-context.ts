// The first middleware every request meets: who sent it (the proxy, which address), its request id,
// and — once the last byte of its response left or the connection closed — one log line and the
// request metrics. It also tells the shutdown drain what is in flight.
import type { Socket } from 'node:net';
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import type { Caller } from '../auth/caller.ts';
import { loggablePath, withRequestId } from '../logging.ts';
import type { Metrics } from '../metrics.ts';
import { createClientResolver } from './client-address.ts';
import type { Drain } from './drain.ts';

export type RequestEnv = {
  Variables: {
    requestId: string;
    /** The request came through our reverse proxy (it carried the shared EDGE_SECRET). */
    fromEdge: boolean;
    /** The client's address: X-Forwarded-For through a trusted proxy, the TCP peer otherwise. */
    clientIp: string;
    /** A process on this machine talking to the server directly (server/http/client-address.ts). */
    local: boolean;
    caller: Caller | undefined;
  };
};

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const DOWNLOAD_ROUTES = new Set(['/get/:encoded', '/v1/files/batch-download/:token']);

export interface RequestContextDeps {
  log: Logger;
  metrics: Metrics;
  drain: Drain;
  edgeSecret: string | undefined;
  trustedProxies: readonly string[];
}

export function requestContext(deps: RequestContextDeps): MiddlewareHandler<RequestEnv> {
  const resolveClient = createClientResolver(deps);
  // Not async: the continuation below holds only what it uses while a request runs, where an
  // async function's suspended frame would hold all of it (~1 KiB per open upload request,
  // bench/README.md, "Memory per held PATCH").
  return (c, next) => {
    const started = performance.now();
    const endHandler = deps.drain.begin();
    const endResponse = deps.drain.begin();
    const incoming = (c.env as HttpBindings | undefined)?.incoming;
    const outgoing = (c.env as HttpBindings | undefined)?.outgoing;
    // Kept now: a response detaches from its socket when it ends.
    const socket = incoming?.socket;
    const { fromEdge: edge, clientIp, local } = resolveClient(incoming?.socket.remoteAddress, c.req.raw.headers);
    const offered = c.req.header('x-request-id');
    const requestId = offered !== undefined && REQUEST_ID.test(offered) ? offered : crypto.randomUUID();
    c.set('requestId', requestId);
    c.set('fromEdge', edge);
    c.set('clientIp', clientIp);
    c.set('local', local);
    const receiving = c.req.path.startsWith('/v1/uploads') && (c.req.method === 'PATCH' || c.req.method === 'POST') && c.req.header('content-type') === 'application/offset+octet-stream';
    if (receiving) deps.metrics.uploadsReceiving.inc();

    return withRequestId(requestId, next).then(
      () => {
        endHandler();
        observe();
      },
      (error: unknown) => {
        endHandler();
        throw error;
      },
    );

    /** Once the handler is done: the response's headers now, its log line and metrics once it is out. */
    function observe(): void {
      const route = routePath(c) || 'unmatched';
      const status = c.res.status;
      try {
        c.res.headers.set('X-Request-Id', requestId);
        // During a shutdown no connection is kept alive for a next request that would be refused.
        if (deps.drain.draining) c.res.headers.set('Connection', 'close');
      } catch {
        // immutable headers (a Response from elsewhere): the id is only a convenience
      }
      const downloading = DOWNLOAD_ROUTES.has(route) && c.req.method === 'GET' && (status === 200 || status === 206) && c.res.body !== null;
      if (downloading) deps.metrics.openDownloads.inc();

      const finish = () => {
        const bytes = socket ? socketBytes(socket) : { read: 0, written: 0 };
        const duration = (performance.now() - started) / 1000;
        if (receiving) deps.metrics.uploadsReceiving.dec();
        if (downloading) deps.metrics.openDownloads.dec();
        const caller = c.get('caller');
        deps.metrics.requests.inc({ method: c.req.method, route, status });
        deps.metrics.requestDuration.observe({ method: c.req.method, route }, duration);
        deps.metrics.bytesReceived.inc({ route }, bytes.read);
        deps.metrics.bytesSent.inc({ route }, bytes.written);
        deps.log.info({
          request_id: requestId,
          method: c.req.method,
          route,
          path: loggablePath(c.req.path),
          status,
          user: caller === undefined ? null : caller.kind === 'service' ? '[service]' : caller.userId,
          client: clientIp,
          via_edge: edge,
          bytes_in: bytes.read,
          bytes_out: bytes.written,
          duration_ms: Math.round(duration * 10_000) / 10,
          ...(outgoing && !outgoing.writableFinished ? { aborted: true } : {}),
        }, 'request');
        endResponse();
      };
      // A connection cut while the handler ran has already closed the response.
      if (outgoing && !outgoing.closed) outgoing.once('close', finish);
      else finish();
    }
  };
}

/**
 * Bytes read and written on the socket since the previous request on it ended: this request's
 * headers and body, both ways, counted once the response is over (or the connection cut), so a
 * PATCH that broke after 3 MiB counts 3 MiB, not its Content-Length.
 */
const marks = new WeakMap<Socket, { read: number; written: number }>();
function socketBytes(socket: Socket): { read: number; written: number } {
  const mark = marks.get(socket) ?? { read: 0, written: 0 };
  const now = { read: socket.bytesRead, written: socket.bytesWritten };
  marks.set(socket, now);
  return { read: now.read - mark.read, written: now.written - mark.written };
}
