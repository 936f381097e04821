// The first thing every request meets: who sent it (the proxy, which address), its request id,
// and — once the last byte of its response left or the connection closed — one log line and the
// request metrics. It also tells the shutdown drain what is in flight. Two callers share it: the
// Hono middleware below, and the upload fast path (server/upload-fast-path.ts), which does the
// same for tus requests without Hono's chain.
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import type { Caller } from '../auth/caller.ts';
import { loggablePath } from '../logging.ts';
import type { Metrics } from '../metrics.ts';
import { createClientResolver, type ResolveClient } from './client-address.ts';
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
const LIVENESS_ROUTE = '/healthz/live';
const DOWNLOAD_ROUTES = new Set(['/get/:encoded', '/v1/files/batch-download/:token']);

export interface RequestContextDeps {
  log: Logger;
  metrics: Metrics;
  drain: Drain;
  edgeSecret: string | undefined;
  trustedProxies: readonly string[];
}

/**
 * One request from its first look to its log line. A class rather than closures: the fast path
 * keeps one per open upload request for as long as its body streams (bench/README.md, "Memory per
 * held PATCH").
 */
export class TrackedRequest {
  readonly requestId: string;
  readonly fromEdge: boolean;
  readonly clientIp: string;
  readonly local: boolean;
  private readonly started = performance.now();
  /** The handler, and the response, each count as work in flight for a shutdown until they end. */
  private handling = true;
  private readonly receiving: boolean;
  // Kept now: a response detaches from its socket when it ends.
  private readonly socket: Socket | undefined;
  private readonly outgoing: ServerResponse | undefined;

  constructor(
    private readonly deps: RequestContextDeps,
    resolveClient: ResolveClient,
    private readonly method: string,
    private readonly path: string,
    headers: Headers,
    env: HttpBindings | undefined,
  ) {
    // Two units: the handler's, and the response's (ended once it is out, in finish()).
    deps.drain.enter();
    deps.drain.enter();
    this.socket = env?.incoming?.socket;
    this.outgoing = env?.outgoing;
    const client = resolveClient(this.socket?.remoteAddress, headers);
    this.fromEdge = client.fromEdge;
    this.clientIp = client.clientIp;
    this.local = client.local;
    const offered = headers.get('x-request-id') ?? undefined;
    this.requestId = offered !== undefined && REQUEST_ID.test(offered) ? offered : crypto.randomUUID();
    this.receiving = path.startsWith('/v1/uploads') && (method === 'PATCH' || method === 'POST') && headers.get('content-type') === 'application/offset+octet-stream';
    if (this.receiving) deps.metrics.uploadsReceiving.inc();
  }

  /** The handler ended without an answer of its own (its error goes on to whoever answers it). */
  failed(): void {
    this.endHandler();
  }

  private endHandler(): void {
    if (!this.handling) return;
    this.handling = false;
    this.deps.drain.end();
  }

  /** The handler's answer: its headers now, its log line and metrics once it is out. */
  answered(response: Response, route: string, caller: Caller | undefined): void {
    this.endHandler();
    const { deps, method } = this;
    const status = response.status;
    try {
      response.headers.set('X-Request-Id', this.requestId);
      // During a shutdown no connection is kept alive for a next request that would be refused.
      if (deps.drain.draining) response.headers.set('Connection', 'close');
    } catch {
      // immutable headers (a Response from elsewhere): the id is only a convenience
    }
    const downloading = DOWNLOAD_ROUTES.has(route) && method === 'GET' && (status === 200 || status === 206) && response.body !== null;
    if (downloading) deps.metrics.openDownloads.inc();
    const finish = () => this.finish(route, status, caller, downloading);
    // A connection cut while the handler ran has already closed the response.
    if (this.outgoing && !this.outgoing.closed) this.outgoing.once('close', finish);
    else finish();
  }

  private finish(route: string, status: number, caller: Caller | undefined, downloading: boolean): void {
    const { deps, method, socket, outgoing } = this;
    const bytes = socket ? socketBytes(socket) : { read: 0, written: 0 };
    const duration = (performance.now() - this.started) / 1000;
    if (this.receiving) deps.metrics.uploadsReceiving.dec();
    if (downloading) deps.metrics.openDownloads.dec();
    deps.metrics.requests.inc({ method, route, status });
    deps.metrics.requestDuration.observe({ method, route }, duration);
    deps.metrics.bytesReceived.inc({ route }, bytes.read);
    deps.metrics.bytesSent.inc({ route }, bytes.written);
    // A load balancer asks /healthz/live every few seconds (the Caddyfile: every 2 s per instance):
    // a line each would bury the requests of people. Counted in the metrics like any request.
    const level = route === LIVENESS_ROUTE && status === 200 ? 'debug' : 'info';
    deps.log[level]({
      request_id: this.requestId,
      method,
      route,
      path: loggablePath(this.path),
      status,
      user: caller === undefined ? null : caller.kind === 'service' ? '[service]' : caller.userId,
      client: this.clientIp,
      via_edge: this.fromEdge,
      bytes_in: bytes.read,
      bytes_out: bytes.written,
      duration_ms: Math.round(duration * 10_000) / 10,
      ...(outgoing && !outgoing.writableFinished ? { aborted: true } : {}),
    }, 'request');
    deps.drain.end();
  }
}

/** Starts tracking one request (see TrackedRequest). */
export type TrackRequest = (method: string, path: string, headers: Headers, env: HttpBindings | undefined) => TrackedRequest;

export function requestTracker(deps: RequestContextDeps): TrackRequest {
  const resolveClient = createClientResolver(deps);
  return (method, path, headers, env) => new TrackedRequest(deps, resolveClient, method, path, headers, env);
}

export function requestContext(track: TrackRequest): MiddlewareHandler<RequestEnv> {
  // Not async: the continuation below holds only what it uses while a request runs, where an
  // async function's suspended frame would hold all of it (~1 KiB per open upload request,
  // bench/README.md, "Memory per held PATCH").
  return (c, next) => {
    const tracked = track(c.req.method, c.req.path, c.req.raw.headers, c.env as HttpBindings | undefined);
    c.set('requestId', tracked.requestId);
    c.set('fromEdge', tracked.fromEdge);
    c.set('clientIp', tracked.clientIp);
    c.set('local', tracked.local);
    return next().then(
      () => tracked.answered(c.res, routePath(c) || 'unmatched', c.get('caller')),
      (error: unknown) => {
        tracked.failed();
        throw error;
      },
    );
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
