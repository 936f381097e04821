// The tus endpoint: who may touch which upload, the request's body, then the upload service
// (server/uploads/service.ts) runs it, and the answer is made uniform (problem+json errors, the
// file record of a finished upload). Mounted in Hono, and called by the upload fast path
// (server/upload-fast-path.ts), which the server's own requests take.
import type { IncomingMessage } from 'node:http';
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { ERRORS as TUS_ERRORS, Metadata } from '@tus/utils';
import type { Logger } from 'pino';
import { identifyRequest, mayAccess, type AuthDeps, type Caller } from '../auth/caller.ts';
import type { Repository } from '../db/contract.ts';
import { AppError, problemResponse, PROBLEM_CONTENT_TYPE, RETRY_AFTER_SECONDS, toAppError, tusErrorToAppError, type ErrorCode } from '../errors.ts';
import { requestBodyFromNode, type BodyIdleListener } from '../http/node-body.ts';
import { isValidUploadId } from '../storage/keys.ts';
import { parseUploadChecksum, type StagedBody, type UploadChecksum } from '../tus-checksum.ts';
import type { TusRequest } from '../tus.ts';
import type { UploadContext, UploadService } from '../uploads/service.ts';
import { advertiseExtensions } from '../tus-discovery.ts';
import { lenientMetadata } from '../tus-metadata-header.ts';
import { createFinalUpload, parseUploadConcat, withoutConcat } from './tus-concat.ts';
import { toFileRecord } from './file-record.ts';
import { answerFinished, finishedFileOf } from './finished-uploads.ts';
import { handleIetf, ietfInteropVersion } from './ietf-uploads.ts';

export interface UploadRouteDeps {
  uploads: UploadService;
  /** For a finished upload's file (server/routes/finished-uploads.ts). */
  repo: Repository;
  auth: AuthDeps;
  log: Logger;
}

const OVERRIDABLE = new Set(['PATCH', 'DELETE', 'HEAD']);
const ON_AN_UPLOAD = new Set(['HEAD', 'PATCH', 'DELETE']);

export function uploadRoutes(deps: UploadRouteDeps): Hono {
  const app = new Hono();
  // tus 1.0 §3.2: every answer carries Tus-Resumable. tus's own answers and ours below set it; a
  // refusal thrown anywhere on this path gets it from the app's error handler (server/app.ts). No
  // middleware of its own here: each layer awaiting next() is kept alive, per open upload request,
  // for as long as its body streams (bench/README.md, "Memory per held PATCH").
  app.all('/', (c) => serveUpload(deps, exchangeOf(c), undefined));
  app.all('/:id', (c) => serveUpload(deps, exchangeOf(c), c.req.param('id')));
  return app;
}

/**
 * One request to the tus endpoint as the route sees it, whoever calls: Hono (above) or the upload
 * fast path (server/upload-fast-path.ts).
 */
export interface UploadExchange {
  raw: Request;
  /** The request as node:http received it: its body is read from it directly (server/http/node-body.ts). */
  incoming: IncomingMessage | undefined;
  /** Its request id, for the log lines of what it causes. */
  requestId: string;
  /** Told who the caller is once known (the request log names the user). */
  identified(caller: Caller): void;
}

function exchangeOf(c: Context): UploadExchange {
  return { raw: c.req.raw, incoming: (c.env as HttpBindings | undefined)?.incoming, requestId: c.get('requestId'), identified: (caller) => c.set('caller', caller) };
}

/** tus 1.0, or the IETF draft translated into it (server/routes/ietf-uploads.ts). */
export function serveUpload(deps: UploadRouteDeps, ex: UploadExchange, id: string | undefined): Promise<Response> {
  const version = ietfInteropVersion(ex.raw);
  if (version === null) return handle(ex, deps, id, ex.raw);
  return handleIetf(ex.raw, version, id, {
    tus: (translated) => handle(ex, deps, id, translated),
    body: () => bodyOf(deps, ex.raw, ex.incoming, undefined),
    lengthOf: async (uploadId) => (isValidUploadId(uploadId) ? (await deps.uploads.unfinished(uploadId))?.length : undefined),
    maxUploadBytes: deps.uploads.maxUploadBytes,
  });
}

function handle(ex: UploadExchange, deps: UploadRouteDeps, id: string | undefined, request: Request): Promise<Response> {
  const answered = handleStaged(ex, deps, id, request);
  if (request === ex.raw) return id !== undefined && effectiveMethod(request) === 'HEAD' ? resumeProbe(deps, id, ex.requestId, answered) : answered;
  // A translated request's refusals are answered by the draft's handler with its headers.
  return answered.catch((error: unknown) => {
    if (error instanceof AppError) return problemResponse(error);
    throw error;
  });
}

/**
 * A HEAD of an upload that fails on the server's side (its database or storage cannot be reached,
 * or a fault) answers 423 upload_unavailable, never a 5xx: tus-js-client 4 (and Uppy with it) takes
 * any other failed HEAD for a lost upload and starts over from byte 0 under a new upload, leaving
 * the old one to expire (tus/tus-js-client#579), while it retries a 423 later on the same upload.
 * The cause is logged as a 5xx answer's would be.
 */
async function resumeProbe(deps: UploadRouteDeps, id: string, requestId: string, answered: Promise<Response>): Promise<Response> {
  let response: Response;
  try {
    response = await answered;
  } catch (error) {
    const known = toAppError(error);
    if (known && known.status < 500) throw error;
    deps.log.error({ err: error, request_id: requestId, upload_id: id }, 'HEAD of an upload failed; answered 423 so that the client asks again');
    throw new AppError('upload_unavailable', 'the upload cannot be read right now; retry shortly');
  }
  // tus's own failures arrive as answers, already logged (server/tus.ts).
  if (response.status < 500) return response;
  throw new AppError('upload_unavailable', 'the upload cannot be read right now; retry shortly');
}

async function handleStaged(ex: UploadExchange, deps: UploadRouteDeps, id: string | undefined, request: Request): Promise<Response> {
  const method = effectiveMethod(request);
  if (method === 'OPTIONS') return advertiseExtensions(await deps.uploads.discover(request));
  if (method === 'GET') {
    // @tus/server would serve raw upload bytes to anyone; finished files are shared through signed links.
    throw new AppError('method_not_allowed', 'uploads are read through signed links', { Allow: 'OPTIONS, POST, HEAD, PATCH, DELETE' });
  }
  const caller = await identifyRequest(ex.raw, deps.auth);
  ex.identified(caller);
  const ctx: UploadContext = { caller, requestId: ex.requestId };
  for (const name of ['upload-length', 'upload-offset']) {
    // tus checks only that String(Number(v)) === v, which 2^54 passes: such a length would be
    // reported as "too large" and such an offset as a conflict, when the header is simply invalid.
    const raw = request.headers.get(name);
    if (raw !== null && headerInteger(request, name) === null) {
      throw new AppError('invalid_header', `${name} must be a whole number of bytes below 2^53`);
    }
  }
  // A translated request (the IETF draft) already carries the body read from the socket.
  const incoming = request === ex.raw ? ex.incoming : undefined;
  const hasBody = method === 'PATCH' || method === 'POST';
  const checksum = hasBody ? parseUploadChecksum(request.headers.get('upload-checksum')) : null;

  if (id === undefined) {
    if (method !== 'POST') throw new AppError('method_not_allowed', 'create uploads with POST', { Allow: 'OPTIONS, POST' });
    const concat = parseUploadConcat(request.headers.get('upload-concat'), request.url);
    if (concat?.kind === 'final') return createFinalUpload(deps.uploads, caller, request, concat.partialIds, ex.requestId);
    ctx.partial = concat?.kind === 'partial';
  } else {
    if (method === 'POST') throw new AppError('method_not_allowed', 'POST creates uploads at /v1/uploads', { Allow: 'HEAD, PATCH, DELETE' });
    // tus would answer 404 to any other method, which a client takes for a lost upload.
    if (!ON_AN_UPLOAD.has(method)) throw new AppError('method_not_allowed', `${method} is not part of tus`, { Allow: 'OPTIONS, HEAD, PATCH, DELETE' });
    if (!isValidUploadId(id)) throw new AppError('not_found', 'no such upload');
    const row = await deps.uploads.unfinished(id);
    if (!row) {
      // A finished upload stays addressable, so a client whose final answer was lost learns it is done.
      const file = await finishedFileOf(deps.repo, caller, id);
      if (file) return answerFinished(method, file, request);
    }
    // Someone else's upload is indistinguishable from one that does not exist.
    if (!row || !mayAccess(caller, row.user_id)) throw new AppError('not_found', 'no such upload');
    ctx.upload = row;
  }

  // Requests that may carry bytes hold a slot of their user's until they end (server/upload-requests.ts).
  const uploader = method === 'PATCH' ? ctx.upload?.user_id : method === 'POST' ? uploaderOf(caller, request) : undefined;
  const slot = uploader === undefined ? undefined : deps.uploads.requests.enter(uploader, method === 'PATCH' ? id : undefined);
  let stagedBody: StagedBody | undefined;
  try {
    // A creation request carries bytes only as creation-with-upload.
    if (checksum && method === 'POST' && request.headers.get('content-type') === 'application/offset+octet-stream') {
      stagedBody = await stage(deps, request, incoming, ctx, checksum, headerInteger(request, 'upload-length'));
    }
    if (checksum && method === 'PATCH' && ctx.upload) {
      const length = ctx.upload.length ?? headerInteger(request, 'upload-length');
      stagedBody = await stage(deps, request, incoming, ctx, checksum, length === null ? null : Math.max(0, length - (headerInteger(request, 'upload-offset') ?? 0)));
    }
    // After the admission above: a refused request must not leave a claim that nothing settles.
    if (method === 'PATCH') {
      await deps.uploads.claim(ctx, {
        declaredLength: headerInteger(request, 'upload-length'),
        contentLength: stagedBody?.size ?? headerInteger(request, 'content-length'),
      });
    }
  } catch (error) {
    slot?.release();
    await stagedBody?.remove();
    throw error;
  }
  const running = deps.uploads.run(method, ctx, new TusRequestBuilder(deps, method, request, hasBody ? incoming : undefined, hasBody, ctx, stagedBody));
  // Not awaited here: this function's frame, with every local above, would otherwise stay alive
  // for as long as the body streams (bench/README.md, "What a held PATCH keeps, object by object").
  return served(deps, method, ctx, request, running, slot, stagedBody);
}

/** The upload service's answer made the client's; then the request's slot and staged body are freed. */
async function served(
  deps: UploadRouteDeps,
  method: string,
  ctx: UploadContext,
  request: Request,
  running: Promise<Response>,
  slot: { release(): void } | undefined,
  staged: StagedBody | undefined,
): Promise<Response> {
  try {
    return await answer(deps, method, ctx, request, await running);
  } finally {
    slot?.release();
    await staged?.remove();
  }
}

/**
 * Makes the request tus reads; the service calls it once the quota claim holds (building the body
 * starts reading the socket). An object rather than a closure over the route's locals, for what a
 * held PATCH keeps alive.
 */
class TusRequestBuilder {
  constructor(
    private readonly deps: UploadRouteDeps,
    private readonly method: string,
    private readonly request: Request,
    private readonly incoming: IncomingMessage | undefined,
    private readonly hasBody: boolean,
    private readonly ctx: UploadContext,
    private readonly staged: StagedBody | undefined,
  ) {}

  build(): TusRequest {
    const { method, request, incoming, hasBody } = this;
    const headers = withoutConcat(lenientMetadata(request.headers));
    if (method === request.method && !incoming && headers === request.headers) return request;
    // Rebuilt, as the four fields tus reads (server/tus.ts), (1) for X-HTTP-Method-Override:
    // tus-java-client/tus-android-client send POST where PATCH is refused, and @tus/server 2.x
    // no longer honours it; (2) to hand tus the body without
    // the copy @hono/node-server's own request body makes (server/http/node-body.ts), or the
    // verified copy of a checksummed body (server/tus-checksum.ts); (3) for lenient metadata and
    // concatenation (server/routes/tus-concat.ts).
    const body = !hasBody ? null : (this.staged?.body ?? bodyOf(this.deps, request, incoming, this.ctx));
    return { method, url: request.url, headers, body };
  }
}

/** The verified copy of a checksummed body, of at most `limit` bytes (server/tus-checksum.ts). */
function stage(deps: UploadRouteDeps, request: Request, incoming: IncomingMessage | undefined, ctx: UploadContext, checksum: UploadChecksum, limit: number | null): Promise<StagedBody> {
  return deps.uploads.staging.stage(bodyOf(deps, request, incoming, ctx), checksum, Math.min(limit ?? Infinity, deps.uploads.maxUploadBytes));
}

/** tus's `response` to `request`, as the client gets it. */
async function answer(deps: UploadRouteDeps, method: string, ctx: UploadContext, request: Request, response: Response): Promise<Response> {
  if (response.status === 404 && (method === 'HEAD' || method === 'PATCH') && ctx.upload && !(await deps.uploads.unfinished(ctx.upload.id))) {
    // Finished by another request between our look-up and tus's (its bookkeeping is gone now).
    const file = await finishedFileOf(deps.repo, ctx.caller, ctx.upload.id);
    if (file) return answerFinished(method, file, request);
  }
  if (ctx.file && response.headers.has('X-File-Key')) {
    // The request that stored the last byte answers with the file record.
    const headers = new Headers(response.headers);
    headers.delete('Content-Length');
    return new Response(JSON.stringify(toFileRecord(ctx.file)), { status: response.status, headers });
  }
  return uniformErrors(response);
}

/** The request's body: straight from the socket when there is one, ended if it goes silent (UPLOAD_IDLE_TIMEOUT_SECONDS). */
function bodyOf(deps: UploadRouteDeps, request: Request, incoming: IncomingMessage | undefined, ctx: UploadContext | undefined): ReadableStream<Uint8Array> | null {
  if (!incoming) return request.body;
  return requestBodyFromNode(incoming, deps.uploads.bodyIdleTimeoutMs, new IdleLog(deps.log, ctx));
}

/** The log line of a body that went silent. An object, not a closure: a held PATCH keeps it. */
class IdleLog implements BodyIdleListener {
  constructor(
    private readonly log: Logger,
    private readonly ctx: UploadContext | undefined,
  ) {}

  bodyIdle(): void {
    const { ctx } = this;
    this.log.info({ event: 'upload.idle', request_id: ctx?.requestId, upload_id: ctx?.upload?.id }, 'upload request body went silent; ended it, bytes kept');
  }
}

/**
 * The user a creation is for, to count it against that user's requests: the caller, or for the
 * service token the `user_id` in Upload-Metadata (undefined when unreadable: creation refuses it).
 */
function uploaderOf(caller: Caller, request: Request): string | undefined {
  if (caller.kind === 'user') return caller.userId;
  try {
    return Metadata.parse(lenientMetadata(request.headers).get('upload-metadata') ?? undefined).user_id ?? undefined;
  } catch {
    return undefined;
  }
}

function effectiveMethod(request: Request): string {
  const override = request.headers.get('x-http-method-override')?.toUpperCase();
  if (request.method === 'POST' && override && OVERRIDABLE.has(override)) return override;
  return request.method;
}

/** A non-negative decimal header, null when absent; anything else is left for tus to refuse. */
function headerInteger(request: Request, name: string): number | null {
  const raw = request.headers.get(name);
  if (raw === null || !/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) return null;
  return Number(raw);
}

/** tus reports its own refusals as plain text; clients get the same problem+json as everywhere else. */
async function uniformErrors(response: Response): Promise<Response> {
  if (response.status < 400) return response;
  const headers = new Headers(response.headers);
  headers.delete('Content-Length');
  const text = await response.text();
  if (text.startsWith('{')) {
    // A problem raised inside tus (hooks, store): tus carried only its status and body.
    headers.set('Content-Type', PROBLEM_CONTENT_TYPE);
    const retry = RETRY_AFTER_SECONDS[(JSON.parse(text) as { code: ErrorCode }).code];
    if (retry !== undefined) headers.set('Retry-After', String(retry));
    return new Response(text, { status: response.status, headers });
  }
  const error = text === TUS_ERRORS.UNKNOWN_ERROR.body ? new AppError('internal') : tusErrorToAppError(response.status, text);
  return problemResponse(error, headers);
}
