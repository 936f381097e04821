// Builds the @tus/server instance: store, naming, size limits, locker, and the wiring to hooks/.
// Per-request facts that tus does not carry (the caller, the upload row, the quota bound) travel
// in a WeakMap keyed by the Request object that routes/uploads.ts hands to tus.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Server, type DataStore } from '@tus/server';
import type { Locker } from '@tus/utils';
import type { Logger } from 'pino';
import type { Lifecycle } from '../hooks/index.ts';
import type { Caller } from './auth/caller.ts';
import type { UploadRow } from './db/repo.ts';
import { AppError, toAppError } from './errors.ts';
import { toFileRecord } from './routes/file-record.ts';
import { createStaging, type Staging } from './tus-checksum.ts';

export const TUS_PATH = '/v1/uploads';

export interface TusRequestContext {
  caller: Caller;
  /** The upload this request addresses (HEAD/PATCH/DELETE), or the one it created (POST). */
  upload?: UploadRow;
  /** Upper bound on the upload's total size for this request (deferred length). */
  bound?: number;
  /** A creation with Upload-Concat: partial (hooks/concat.ts). */
  partial?: boolean;
}

export interface TusDeps {
  store: DataStore;
  locker: Locker;
  lifecycle: Lifecycle;
  maxUploadBytes: number;
  /** UPLOAD_IDLE_TIMEOUT_SECONDS, for the request bodies handed to tus (server/http/node-body.ts). */
  bodyIdleTimeoutMs: number;
  publicUrl: () => string;
  log: Logger;
  /** Bodies whose Upload-Checksum is being verified are staged under `<dataDir>/staging`. */
  dataDir: string;
}

export interface Tus {
  server: Server;
  contexts: WeakMap<Request, TusRequestContext>;
  staging: Staging;
  maxUploadBytes: number;
  /** The URL of an upload, as Location gives it. */
  uploadUrl(id: string): string;
  bodyIdleTimeoutMs: number;
}

export function newUploadId(): string {
  return randomBytes(16).toString('hex');
}

export function createTus(deps: TusDeps): Tus {
  const contexts = new WeakMap<Request, TusRequestContext>();
  const contextOf = (req: Request): TusRequestContext => {
    const ctx = contexts.get(req);
    if (!ctx) throw new Error('tus request without a context: requests must come through routes/uploads.ts');
    return ctx;
  };
  observeWhileWriting(deps.store, deps.lifecycle);

  const uploadUrl = (id: string) => `${deps.publicUrl()}${TUS_PATH}/${id}`;
  const server = new Server({
    path: TUS_PATH,
    datastore: deps.store,
    locker: deps.locker,
    // CORS is answered by Hono for every route alike (app.ts); tus would otherwise send `*`.
    allowedOrigins: () => false,
    namingFunction: newUploadId,
    generateUrl: (_req, { id }) => uploadUrl(id),
    maxSize: (req) => {
      // OPTIONS (discovery: Tus-Max-Size) carries no context: it names no upload.
      const bound = contexts.get(req as unknown as Request)?.bound;
      // 0 would mean "unlimited" to tus, so a bound is never allowed to reach it.
      return bound === undefined ? deps.maxUploadBytes : Math.max(1, Math.min(bound, deps.maxUploadBytes));
    },
    async onUploadCreate(req, upload) {
      const ctx = contextOf(req as unknown as Request);
      const contentLength = req.headers.get('content-length');
      ctx.upload = deps.lifecycle.create(ctx.caller, upload.metadata, {
        uploadId: upload.id,
        length: upload.size ?? null,
        bodyLength: contentLength !== null ? Number(contentLength) : null,
        hasBody: req.headers.get('content-type') === 'application/offset+octet-stream',
        partial: ctx.partial === true,
      });
      return {};
    },
    async onUploadFinish(req, upload) {
      // A complete partial upload waits for its final upload (hooks/concat.ts).
      if (deps.lifecycle.isPartial(upload.id)) return {};
      const file = await deps.lifecycle.finish({ id: upload.id, size: upload.size ?? upload.offset });
      return {
        // A POST that finished the upload (creation-with-upload) must stay 201: clients need Location.
        status_code: req.method === 'POST' ? 201 : 200,
        headers: { 'Content-Type': 'application/json', 'X-File-Key': file.key },
        body: JSON.stringify(toFileRecord(file)),
      };
    },
    onResponseError(_req, error) {
      if (isTusError(error) && !(error instanceof AppError)) return undefined; // routes/uploads.ts maps tus's text
      const known = toAppError(error);
      if (!known || known.status >= 500) deps.log.error({ err: error }, 'upload request failed');
      // tus writes only status and body; headers such as Retry-After travel in the body's problem.
      return { status_code: (known ?? new AppError('internal')).status, body: JSON.stringify((known ?? new AppError('internal')).toProblem()) };
    },
  });
  return {
    server,
    contexts,
    staging: createStaging(path.join(deps.dataDir, 'staging')),
    maxUploadBytes: deps.maxUploadBytes,
    uploadUrl,
    bodyIdleTimeoutMs: deps.bodyIdleTimeoutMs,
  };
}

/**
 * Every byte tus writes passes through the upload's SHA-256 on its way to the store, so the digest
 * is ready the moment the last byte lands (hooks/sha256.ts), and its first bytes past the type
 * sniffer (hooks/type-sniffer.ts). Wrapping the store's write is the one place that sees exactly the
 * bytes that are stored, for every backend.
 */
function observeWhileWriting(store: DataStore, lifecycle: Lifecycle): void {
  const write = store.write.bind(store);
  store.write = async (readable: Readable, id: string, offset: number) => {
    // Stores report every failure as their own write error; a refusal from upstream (tus's size
    // limiter: 413) must reach the client as what it is.
    let upstreamError: unknown = readable.errored ?? undefined;
    readable.once('error', (error) => (upstreamError = error));
    const observed = await lifecycle.observeWrite(id, offset, readable);
    // A client that disconnects before the store starts reading (S3 first fetches the unfinished
    // part it prepends) errors this stream while nothing listens yet: an uncaught exception. The
    // store still sees the error: its pipeline finds the stream destroyed.
    observed.stream.on('error', () => {});
    let newOffset: number | null = null;
    let failure: unknown;
    try {
      newOffset = await write(observed.stream, id, offset);
    } catch (error) {
      failure = isTusError(upstreamError) ? upstreamError : error;
    }
    // Throws a refusal found in the first bytes (type_not_allowed), which outranks the store's error.
    await observed.settle(newOffset);
    if (failure !== undefined) throw failure;
    return newOffset!;
  };
}

function isTusError(error: unknown): error is { status_code: number; body: string } {
  return typeof error === 'object' && error !== null && 'status_code' in error && 'body' in error;
}
