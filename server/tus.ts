// Builds the @tus/server instance: store, naming, size limits and error answers. What happens to an
// upload when tus creates or finishes it is decided by the upload service (server/uploads/), which
// passes its decisions in as `onCreate`, `onFinish` and `bound`.
import { randomBytes } from 'node:crypto';
import { Server, type DataStore } from '@tus/server';
import type { Locker, Upload } from '@tus/utils';
import type { Logger } from 'pino';
import { AppError, isTusError, toAppError } from './errors.ts';

export const TUS_PATH = '/v1/uploads';

/**
 * What @tus/server 2.x reads of a request it handles: its method, URL, headers and body, nothing
 * else. The route hands it a plain object of these four rather than a rebuilt `Request`: undici's
 * Request copies every header, parses the URL and makes an AbortSignal, and a PATCH keeps all of
 * it alive for as long as its body streams (bench/README.md, "What a held PATCH keeps, object by
 * object").
 */
export interface TusRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
}

/** `request` handled by `tus` (typed as a Request there, read only as a TusRequest). */
export function handleTusRequest(tus: Server, request: TusRequest): Promise<Response> {
  return tus.handleWeb(request as unknown as Request);
}

export interface TusDeps {
  store: DataStore;
  locker: Locker;
  /**
   * How long a request asked to give its lock to a newer one may run before tus aborts it; tus's
   * own default (3 s) when unset. A shared locker sets it below a second, so a request that moved
   * to another instance proceeds within about a second.
   */
  lockDrainTimeoutMs?: number;
  maxUploadBytes: number;
  /** The URL of an upload, as Location gives it. */
  uploadUrl(id: string): string;
  /** Upper bound on the upload's total size for this request (deferred length), if any. */
  bound(req: TusRequest): number | undefined;
  onCreate(req: TusRequest, upload: Upload): Promise<void>;
  /** The answer to the request that stored the last byte. */
  onFinish(req: TusRequest, upload: Upload): Promise<{ status_code?: number; headers?: Record<string, string> }>;
  /** The request id of a request, for the log line of its failure. */
  requestId(req: TusRequest): string | undefined;
  log: Logger;
}

/** Where an upload's id ends in its URL: the query or fragment that may follow it. */
const AFTER_PATH = /[?#]/;
/** The last segment of a path, a trailing slash allowed (tus's own rule). */
const LAST_SEGMENT = /([^/]+)\/?$/;

/**
 * The upload an upload URL names: its path's last segment, decoded. tus's own reading takes the
 * URL's last segment with its query, so `…/<id>?x=1` (a cache-buster, a service's `?user_id=`)
 * named no upload and HEAD answered 404, on which tus clients start the upload over. The route
 * reads the id from the path alike (server/routes/uploads.ts), so both name one upload.
 */
export function uploadIdOfUrl(url: string): string | undefined {
  const end = url.search(AFTER_PATH);
  const match = LAST_SEGMENT.exec(end === -1 ? url : url.slice(0, end));
  if (!match) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
  // As tus's rule: the endpoint itself names no upload, nor does a segment that decodes to a path.
  if (TUS_PATH.includes(match[1]!) || id.includes('/') || id.includes('\\') || id.includes('\0')) return undefined;
  return id;
}

export function newUploadId(): string {
  return randomBytes(16).toString('hex');
}

export function createTus(deps: TusDeps): Server {
  return new Server({
    path: TUS_PATH,
    datastore: deps.store,
    locker: deps.locker,
    ...(deps.lockDrainTimeoutMs === undefined ? {} : { lockDrainTimeout: deps.lockDrainTimeoutMs }),
    // CORS is answered by Hono for every route alike (app.ts); tus would otherwise send `*`.
    allowedOrigins: () => false,
    namingFunction: newUploadId,
    generateUrl: (_req, { id }) => deps.uploadUrl(id),
    getFileIdFromRequest: (req) => uploadIdOfUrl(req.url),
    maxSize: (req) => {
      // OPTIONS (discovery: Tus-Max-Size) names no upload, so it has no bound.
      const bound = deps.bound(req as unknown as TusRequest);
      // 0 would mean "unlimited" to tus, so a bound is never allowed to reach it.
      return bound === undefined ? deps.maxUploadBytes : Math.max(1, Math.min(bound, deps.maxUploadBytes));
    },
    async onUploadCreate(req, upload) {
      await deps.onCreate(req as unknown as TusRequest, upload);
      return {};
    },
    onUploadFinish: (req, upload) => deps.onFinish(req as unknown as TusRequest, upload),
    onResponseError(req, error) {
      if (isTusError(error) && !(error instanceof AppError)) return undefined; // routes/uploads.ts maps tus's text
      const known = toAppError(error);
      if (!known || known.status >= 500) deps.log.error({ err: error, request_id: deps.requestId(req as unknown as TusRequest) }, 'upload request failed');
      // tus writes only status and body; headers such as Retry-After travel in the body's problem.
      return { status_code: (known ?? new AppError('internal')).status, body: JSON.stringify((known ?? new AppError('internal')).toProblem()) };
    },
  });
}
