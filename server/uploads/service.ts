// The upload service: every decision about an upload before, during and after @tus/server handles
// its request. The route (server/routes/uploads.ts) has already identified the caller, checked that
// the upload is theirs and admitted the request; from there a request runs in one line:
//   before tus: a PATCH records activity for expiry and claims the quota it may use (hooks/quota.ts)
//   tus:        creation reserves (onCreate); bytes stream through the lifecycle's store (SHA-256,
//               type sniffing); the request that stores the last byte finishes the upload (onFinish)
//   after tus:  termination and failed creations discard; a write settles its reservation; a HEAD
//               on an upload whose bytes are all stored but unrecorded finishes it; Upload-Expires
// It lives above hooks/ (the lifecycle steps, free of HTTP) and server/tus.ts (the @tus/server
// instance), which it composes; routes import only its types.
import path from 'node:path';
import type { Locker } from '@tus/utils';
import type { Logger } from 'pino';
import type { FinalUpload, Lifecycle, PatchRequest } from '../../hooks/index.ts';
import type { Caller } from '../auth/caller.ts';
import type { Repository } from '../db/contract.ts';
import type { FileRow, UploadRow } from '../db/repo.ts';
import { createTus, handleTusRequest, newUploadId, TUS_PATH, type TusRequest } from '../tus.ts';
import { createStaging, type Staging } from '../tus-checksum.ts';
import type { UploadRequests } from '../upload-requests.ts';
import { createFinishing } from './finishing.ts';

/** What one request carries through the service, beyond what tus sees. */
export interface UploadContext {
  caller: Caller;
  /** For the log lines of what this request causes. */
  requestId: string;
  /** The upload this request addresses (HEAD/PATCH/DELETE), or the one it created (POST). */
  upload?: UploadRow;
  /** A creation with Upload-Concat: partial (hooks/concat.ts). */
  partial?: boolean;
  /** Upper bound on the upload's total size for this request (deferred length). */
  bound?: number;
  /** The file this request finished the upload into (POST or PATCH: the route answers its record). */
  file?: FileRow;
}

/** Builds the request tus reads (server/tus.ts), when the service asks for it. */
export interface TusRequestSource {
  build(): TusRequest;
}

export interface UploadServiceDeps {
  lifecycle: Lifecycle;
  locker: Locker;
  /** Passed to tus (server/tus.ts): set with a locker shared by several instances. */
  lockDrainTimeoutMs?: number;
  repo: Repository;
  maxUploadBytes: number;
  /** UPLOAD_IDLE_TIMEOUT_SECONDS, for the request bodies handed to tus (server/http/node-body.ts). */
  bodyIdleTimeoutMs: number;
  uploadExpirySeconds: number;
  /** The origin put into Location headers (known once the port is bound when PUBLIC_URL is unset). */
  publicUrl: () => string;
  /** Bodies whose Upload-Checksum is being verified are staged under `<dataDir>/staging`. */
  dataDir: string;
  now: () => number;
  log: Logger;
}

export interface UploadService {
  /** Upload requests in flight: per-user admission, and what expiry skips. */
  readonly requests: UploadRequests;
  readonly staging: Staging;
  readonly maxUploadBytes: number;
  readonly bodyIdleTimeoutMs: number;
  /** The URL of an upload, as Location gives it. */
  uploadUrl(id: string): string;
  /** The unfinished upload with this id, if any. */
  unfinished(id: string): Promise<UploadRow | undefined>;
  /** OPTIONS: what tus advertises (server/tus-discovery.ts adds the rest). */
  discover(request: Request): Promise<Response>;
  /**
   * Before run(), for a PATCH on `ctx.upload`: records activity for expiry and claims the quota it
   * may use, from what it says of its size; the bound goes into `ctx`. Throws quota_exceeded.
   */
  claim(ctx: UploadContext, claim: PatchRequest): Promise<void>;
  /**
   * One tus request (`method` is the effective one) of a caller the route has authorised (and, for
   * a PATCH, whose claim holds: the request is built here, and building its body starts reading
   * the socket). Not an async function: the promise it returns is tus's own, followed by what the
   * service does after, with no further link that a body streaming for hours would keep alive.
   */
  run(method: string, ctx: UploadContext, request: TusRequestSource): Promise<Response>;
  /** Upload-Concat: final: a new upload assembled from the partial ones, and its file. */
  concatenate(final: Omit<FinalUpload, 'finalId'>): Promise<{ id: string; file: FileRow }>;
}

export function createUploadService(deps: UploadServiceDeps): UploadService {
  const { lifecycle, repo } = deps;
  // Per-request facts that tus does not carry, keyed by the request object handed to tus.
  const contexts = new WeakMap<TusRequest, UploadContext>();
  const contextOf = (req: TusRequest): UploadContext => {
    const ctx = contexts.get(req);
    if (!ctx) throw new Error('tus request without a context: requests must come through the upload service');
    return ctx;
  };
  /** Requests that created their upload: whether it is partial is known without asking the database. */
  const creations = new WeakSet<UploadContext>();
  const uploadUrl = (id: string) => `${deps.publicUrl()}${TUS_PATH}/${id}`;
  const finishing = createFinishing(deps);

  const tus = createTus({
    store: lifecycle.store,
    locker: deps.locker,
    lockDrainTimeoutMs: deps.lockDrainTimeoutMs,
    maxUploadBytes: deps.maxUploadBytes,
    uploadUrl,
    bound: (req) => contexts.get(req)?.bound,
    async onCreate(req, upload) {
      const ctx = contextOf(req);
      const contentLength = req.headers.get('content-length');
      ctx.upload = await lifecycle.create(ctx.caller, upload.metadata, {
        uploadId: upload.id,
        length: upload.size ?? null,
        bodyLength: contentLength !== null ? Number(contentLength) : null,
        hasBody: req.headers.get('content-type') === 'application/offset+octet-stream',
        partial: ctx.partial === true,
        requestId: ctx.requestId,
      });
      creations.add(ctx);
    },
    async onFinish(req, upload) {
      // A complete partial upload waits for its final upload (hooks/concat.ts).
      const ctx = contextOf(req);
      if (creations.has(ctx) ? ctx.partial === true : await lifecycle.isPartial(upload.id)) return {};
      const file = await finishing.finish({ id: upload.id, size: upload.size ?? upload.offset, requestId: ctx.requestId });
      ctx.file = file;
      // A POST that finished the upload (creation-with-upload) must stay 201: clients need Location.
      return { status_code: req.method === 'POST' ? 201 : 200, headers: { 'Content-Type': 'application/json', 'X-File-Key': file.key } };
    },
    requestId: (req) => contexts.get(req)?.requestId,
    log: deps.log,
  });

  /** After tus answered: keep the database in step with what is stored. */
  async function settle(method: string, ctx: UploadContext, response: Response): Promise<void> {
    const upload = ctx.upload;
    if (!upload) return;
    if (method === 'DELETE' && response.status === 204) {
      await lifecycle.discard(upload.id, 'terminated', ctx.requestId);
      return;
    }
    if (method === 'POST' && !response.ok) {
      // The client never learnt this upload's URL: nothing may stay behind.
      try {
        await lifecycle.discard(upload.id, 'creation_failed', ctx.requestId);
      } catch (error) {
        // Storage could not remove what the creation left (it is away). The row stays, so that
        // expiry removes those bytes later, but it no longer holds the user's quota.
        await lifecycle.releaseReservation(upload.id).catch(() => {});
        throw error;
      }
      return;
    }
    if ((method === 'POST' || method === 'PATCH') && !response.headers.has('X-File-Key')) {
      // Bookkeeping only: if it fails (e.g. the disk is full) tus's answer stands, and a deferred
      // upload keeps its larger claim until its next request settles it.
      try {
        await lifecycle.afterWrite(upload);
      } catch (error) {
        deps.log.warn({ err: error, request_id: ctx.requestId, upload_id: upload.id }, 'could not settle the upload after a write');
      }
    }
  }

  return {
    requests: lifecycle.requests,
    staging: createStaging(path.join(deps.dataDir, 'staging')),
    maxUploadBytes: deps.maxUploadBytes,
    bodyIdleTimeoutMs: deps.bodyIdleTimeoutMs,
    uploadUrl,
    unfinished: (id) => repo.getUpload(id),
    discover: (request) => tus.handleWeb(request),
    async claim(ctx, claim) {
      if (ctx.upload) ctx.bound = await lifecycle.beforePatch(ctx.upload, claim);
    },
    run(method, ctx, source) {
      let request: TusRequest;
      try {
        request = source.build();
      } catch (error) {
        return Promise.reject(error);
      }
      contexts.set(request, ctx);
      return handleTusRequest(tus, request).then((response) => after(method, ctx, response));
    },
    async concatenate(final) {
      const id = newUploadId();
      return { id, file: await lifecycle.concatenate({ ...final, finalId: id }) };
    },
  };

  /** What tus answered, made consistent with the database, and the answer the route gets. */
  async function after(method: string, ctx: UploadContext, answered: Response): Promise<Response> {
    let response = answered;
    if (method === 'DELETE' && ctx.upload && (response.status === 404 || response.status === 500) && (await repo.getUpload(ctx.upload.id))) {
      // tus could not terminate an upload this server knows: its bookkeeping is missing (S3's
      // `.info`; on disk the store removes what is left itself). Termination removes whatever is
      // left (settle) and frees the reservation; a storage failure there answers as what it is.
      response = new Response(null, { status: 204, headers: { 'Tus-Resumable': '1.0.0' } });
    }
    if ((method === 'HEAD' || method === 'PATCH') && response.status === 404 && ctx.upload && (await repo.getUpload(ctx.upload.id))) {
      // Storage lost the upload that the database still holds: a finish may have moved its bytes
      // and failed to record them. Then the file is recorded now, and the route answers for it.
      await finishing.recover(ctx.upload.id);
    }
    await settle(method, ctx, response);
    const partial = method === 'HEAD' && ctx.upload !== undefined && (await lifecycle.isPartial(ctx.upload.id));
    if (partial) response.headers.set('Upload-Concat', 'partial');
    if (method === 'HEAD' && ctx.upload && !partial && isComplete(response)) {
      response = await finishing.finishOnHead(ctx.upload.id, response, ctx.requestId);
    }
    if ((method === 'POST' || method === 'PATCH') && response.ok && !response.headers.has('X-File-Key')) {
      // Expiry counts from the last recorded activity (hooks/expiry.ts; beforePatch records it at
      // most once per min(60 s, expiry/100)), so each write moves it forward, never past what is stored.
      const since = ctx.upload?.touched_at ?? deps.now();
      response.headers.set('Upload-Expires', new Date(since + deps.uploadExpirySeconds * 1000).toUTCString());
    }
    return response;
  }
}

function isComplete(response: Response): boolean {
  const length = response.headers.get('upload-length');
  return response.status === 200 && length !== null && length === response.headers.get('upload-offset');
}
