// The tus endpoint without Hono's middleware chain. An upload PATCH may stream for hours, and each
// layer it crosses stays alive for as long: Hono's `compose` keeps a suspended frame per middleware
// (~1 KiB each), its Context ~1.5 KiB with 16 per-instance closures (bench/README.md, "Memory per
// held PATCH"); without them a held PATCH keeps ~7 KiB less (bench/README.md, "The upload fast
// path"). So requests to /v1/uploads and /v1/uploads/<id> are taken at the `fetch` that
// @hono/node-server calls, and what the chain does for them is done here once, through the same
// functions the middleware uses: the request context (server/http/request-context.ts), reading the
// rest of an unread body (server/http/unread-body.ts), the cookie origin check
// (server/http/cross-origin.ts), the auth-failure limit (server/http/rate-limit-middleware.ts),
// the route (server/routes/uploads.ts) and the error answer (server/error-answer.ts).
//
// Clients see what Hono's path gives, to the byte: the same status, headers and bodies, the same
// log line and metric labels (`route` is where Hono stopped: the route's pattern, or `/v1/*` for a
// refusal of the /v1 checks). Anything this path does not reproduce goes to Hono: CORS (its
// middleware rebuilds every answer), paths with percent-escapes, anything but the two routes.
import type { HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Caller } from './auth/caller.ts';
import { errorAnswer } from './error-answer.ts';
import type { TrackedRequest, TrackRequest } from './http/request-context.ts';
import type { AuthFailureRule } from './http/rate-limit-middleware.ts';
import { readRestOnceAnswered, type UnreadBodyOptions } from './http/unread-body.ts';
import { serveUpload, type UploadRouteDeps } from './routes/uploads.ts';
import { TUS_PATH } from './tus.ts';

export interface UploadFastPathDeps {
  route: UploadRouteDeps;
  track: TrackRequest;
  originRule: (request: Request) => void;
  authFailure: AuthFailureRule;
  readRest: UnreadBodyOptions;
  log: Logger;
  /** Hono's own path of a request (app.getPath), so both paths agree on which requests are uploads. */
  getPath: (request: Request) => string;
}

/** The labels Hono's routePath() gives these requests. */
const ROUTE_CREATE = TUS_PATH;
const ROUTE_UPLOAD = `${TUS_PATH}/:id`;
const ROUTE_V1_CHECKS = '/v1/*';
/** One path segment as Hono's router matches `:id` and hands it over undecoded. */
const PLAIN_SEGMENT = /^[^/%]+$/;

/** The answer to a tus request, or undefined for a request Hono must answer. */
export type UploadFastPath = (request: Request, env: HttpBindings | undefined) => Promise<Response> | undefined;

export function uploadFastPath(deps: UploadFastPathDeps): UploadFastPath {
  return (request, env) => {
    const path = deps.getPath(request);
    if (!path.startsWith(TUS_PATH)) return undefined;
    let id: string | undefined;
    if (path.length > TUS_PATH.length) {
      id = path.slice(TUS_PATH.length + 1);
      if (path[TUS_PATH.length] !== '/' || !PLAIN_SEGMENT.test(id)) return undefined;
    }
    return answerUpload(deps, request, env, path, id);
  };
}

function answerUpload(deps: UploadFastPathDeps, request: Request, env: HttpBindings | undefined, path: string, id: string | undefined): Promise<Response> {
  const method = request.method;
  const tracked = deps.track(method, path, request.headers, env);
  const { clientIp, local, requestId } = tracked;
  let route = ROUTE_V1_CHECKS;
  let caller: Caller | undefined;
  let served: Promise<Response>;
  try {
    deps.originRule(request);
    deps.authFailure.admit(clientIp, local);
    route = id === undefined ? ROUTE_CREATE : ROUTE_UPLOAD;
    const exchange = { raw: request, incoming: env?.incoming, requestId, identified: (who: Caller) => void (caller = who) };
    served = serveUpload(deps.route, exchange, id);
  } catch (error) {
    served = Promise.reject(error);
  }
  const answered = (response: Response): Response => {
    // A refusal of the /v1 checks is not an answer of the route: the auth-failure limit counts neither.
    if (route !== ROUTE_V1_CHECKS) deps.authFailure.answered(clientIp, local, response.status, path);
    tracked.answered(response, route, caller);
    readRestOnceAnswered(env, deps.readRest);
    // Hono answers HEAD by handling it as GET and dropping the body (hono-base's dispatch).
    return method === 'HEAD' ? new Response(null, response) : response;
  };
  // One reaction for both outcomes, and one link between the route and @hono/node-server: each
  // promise and closure on this chain lives as long as an upload streams.
  return served.then(answered, (error: unknown) => {
    let response: Response;
    try {
      response = composedError(errorAnswer(deps.log, error, method, path, requestId));
    } catch (failure) {
      tracked.failed();
      throw failure;
    }
    return answered(response);
  });
}

/**
 * Hono's compose puts an error's answer in place of the response its handler read, as a new
 * Response over the same body (Context's `res` setter): done here too, so both give the same bytes.
 */
function composedError(response: Response): Response {
  return new Response(response.body, response);
}
