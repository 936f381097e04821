// One table of stable error codes. Every error a client can see comes from here, as RFC 9457
// problem+json: {type, title, status, code, detail}. Unknown errors become a plain 500 `internal`;
// their message and cause go to the log only.

export const ERROR_CODES = {
  bad_request: { status: 400, title: 'Bad request' },
  invalid_metadata: { status: 400, title: 'Invalid upload metadata' },
  invalid_parameter: { status: 400, title: 'Invalid parameter' },
  invalid_user_id: { status: 400, title: 'Invalid user id' },
  invalid_header: { status: 400, title: 'Invalid header' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  invalid_token: { status: 401, title: 'Invalid token' },
  token_expired: { status: 401, title: 'Token expired' },
  forbidden: { status: 403, title: 'Forbidden' },
  infected: { status: 403, title: 'File is infected' },
  scan_failed: { status: 403, title: 'File could not be scanned' },
  invalid_signature: { status: 403, title: 'Invalid or tampered link' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  request_timeout: { status: 408, title: 'Request timeout' },
  offset_mismatch: { status: 409, title: 'Upload-Offset does not match the upload' },
  link_expired: { status: 410, title: 'Link expired' },
  conflict: { status: 409, title: 'Conflict' },
  scan_pending: { status: 409, title: 'File not scanned yet' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  upload_too_large: { status: 413, title: 'Upload too large' },
  quota_exceeded: { status: 413, title: 'Quota exceeded' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  type_not_allowed: { status: 415, title: 'File type not allowed' },
  range_not_satisfiable: { status: 416, title: 'Range not satisfiable' },
  upload_locked: { status: 423, title: 'Upload is locked by another request' },
  // A HEAD of an upload whose state the server cannot read now (server/routes/uploads.ts says why 423).
  upload_unavailable: { status: 423, title: 'Upload state cannot be read right now' },
  rate_limited: { status: 429, title: 'Too many requests' },
  headers_too_large: { status: 431, title: 'Request headers too large' },
  too_many_upload_requests: { status: 429, title: 'Too many upload requests in flight' },
  too_many_unfinished_uploads: { status: 429, title: 'Too many unfinished uploads' },
  checksum_mismatch: { status: 460, title: 'Checksum mismatch' },
  internal: { status: 500, title: 'Internal server error' },
  not_implemented: { status: 501, title: 'Not implemented' },
  unavailable: { status: 503, title: 'Service unavailable' },
  insufficient_storage: { status: 507, title: 'Insufficient storage' },
  body_too_large: { status: 413, title: 'Request body too large' },
  origin_not_allowed: { status: 403, title: 'Cross-origin request refused' },
  part_out_of_order: { status: 409, title: 'Part out of order' },
  upload_incomplete: { status: 409, title: 'Upload incomplete' },
  unsupported_checksum_algorithm: { status: 400, title: 'Unsupported checksum algorithm' },
  invalid_concatenation: { status: 400, title: 'Invalid concatenation' },
  // A ready record whose bytes storage no longer holds, or holds at another size (docs/storage-check.md).
  file_missing: { status: 410, title: 'The stored bytes of this file are gone' },
  file_damaged: { status: 500, title: 'The stored bytes of this file do not match its record' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Refusals worth retrying as they are, after this many seconds (RFC 9110 §10.2.3). */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  upload_locked: 1,
  upload_unavailable: 1,
  scan_pending: 5,
  unavailable: 1,
  insufficient_storage: 60,
  // A request slot frees as soon as one of the user's other requests ends.
  too_many_upload_requests: 5,
  // Room comes back when an upload finishes, is terminated or expires.
  too_many_unfinished_uploads: 60,
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    public headers: Record<string, string> = {},
  ) {
    super(detail ?? ERROR_CODES[code].title);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
    const retry = RETRY_AFTER_SECONDS[code];
    if (retry !== undefined && !('Retry-After' in headers)) this.headers = { ...headers, 'Retry-After': String(retry) };
  }

  toProblem(): Problem {
    const { status, title } = ERROR_CODES[this.code];
    const problem: Problem = { type: problemType(this.code), title, status, code: this.code };
    if (this.detail !== undefined) problem.detail = this.detail;
    return problem;
  }
}

export function problemType(code: ErrorCode): string {
  return `urn:stream-line:problem:${code}`;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemResponse(error: AppError, extraHeaders?: HeadersInit): Response {
  const headers = new Headers(extraHeaders);
  headers.set('Content-Type', PROBLEM_CONTENT_TYPE);
  for (const [name, value] of Object.entries(error.headers)) headers.set(name, value);
  return new Response(JSON.stringify(error.toProblem()), { status: error.status, headers });
}

/**
 * @tus/server reports its own protocol errors as plain text. This maps each of them to a code, so a
 * client sees the same problem+json whether the refusal came from tus or from our hooks.
 * Keyed by status and the start of tus's message (its bodies are stable within a major version).
 * tus's message is the detail, unless a fourth entry says it better.
 */
const TUS_MESSAGES: Array<[number, string, ErrorCode, string?]> = [
  [403, 'Upload-Offset header required', 'invalid_header'],
  [403, 'Content-Type header required', 'unsupported_media_type'],
  [400, 'Request aborted', 'bad_request'],
  [400, 'Cannot terminate an already completed upload', 'conflict'],
  // tus's one text for every length refusal, including those where the length is there but not allowed.
  [400, 'Upload-Length or Upload-Defer-Length', 'invalid_header',
    'a creation sends one of Upload-Length or Upload-Defer-Length: 1; a PATCH sends Upload-Length only once for a deferred length, never below the offset, and never when the length is known'],
  [400, 'Upload-Metadata is invalid', 'invalid_metadata'],
  [404, '', 'not_found'],
  [409, '', 'offset_mismatch'],
  [410, '', 'not_found'],
  [412, 'Tus-Resumable Required', 'precondition_failed'],
  [413, '', 'upload_too_large'],
  [500, 'failed to acquire lock', 'upload_locked'],
  [501, '', 'not_implemented'],
];

/** tus 1.0 §2.4: a 412 "MUST include the Tus-Version header". */
const TUS_VERSION_HEADER = { 'Tus-Version': '1.0.0' };

export function tusErrorToAppError(status: number, body: string): AppError {
  if (status === 400 && body.startsWith('Invalid ')) return invalidHeaders(body);
  for (const [s, prefix, code, detail] of TUS_MESSAGES) {
    if (s === status && body.startsWith(prefix)) {
      return new AppError(code, detail ?? (body.trim() || undefined), code === 'precondition_failed' ? TUS_VERSION_HEADER : {});
    }
  }
  return new AppError('internal');
}

/**
 * @tus/server checks every tus header before any handler runs and answers `Invalid <names…>` (400).
 * The protocol asks for more precise answers for some of them, so the names decide the code, the
 * most fundamental first: an unsupported Tus-Resumable is 412 and the request "MUST NOT" be
 * processed (tus 1.0 §2.4); a PATCH whose Content-Type is not application/offset+octet-stream is
 * 415 (tus 1.0 §3.2 PATCH); a malformed Upload-Metadata is a metadata problem, not a header one.
 */
function invalidHeaders(body: string): AppError {
  const names = new Set(body.slice('Invalid '.length).trim().toLowerCase().split(/\s+/));
  const detail = body.trim();
  if (names.has('tus-resumable')) return new AppError('precondition_failed', 'Tus-Resumable must be 1.0.0', TUS_VERSION_HEADER);
  if (names.has('content-type')) return new AppError('unsupported_media_type', 'PATCH bodies must be application/offset+octet-stream');
  if (names.has('upload-metadata')) return new AppError('invalid_metadata', 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys');
  return new AppError('invalid_header', detail);
}

/**
 * Failures of the machine rather than of the request, which a client should see as what they are:
 * a full disk (file system or SQLite) is 507 and worth retrying later; a locked database, or a
 * service the server cannot reach (S3 storage), is 503.
 * Anything else unknown stays an internal error.
 */
export function toAppError(error: unknown): AppError | null {
  if (error instanceof AppError) return error;
  const full = diskFullError(error);
  if (full) return full;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new AppError('unavailable', 'the database is busy; retry shortly');
  }
  if (typeof code === 'string' && DIAL_FAILURES.has(code)) {
    return new AppError('unavailable', 'a service the server depends on cannot be reached; retry shortly');
  }
  if (storageServiceFailed(error)) return new AppError('unavailable', 'the storage service failed to answer; retry shortly');
  return null;
}

/**
 * An S3-compatible service that still answered 5xx after the SDK's own retries: throttling
 * (503 SlowDown), overload or an internal error on its side. Transient for the client, as S3's
 * own guidance says of both, so 503 with Retry-After rather than 500.
 */
function storageServiceFailed(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 500 && status <= 599;
}

/**
 * A connection this server could not open (to S3 storage, say): never the client's own socket,
 * whose failures are resets (ECONNRESET, EPIPE) and never reach an answer.
 */
const DIAL_FAILURES = new Set<unknown>(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

const DISK_FULL = new Set<unknown>(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/**
 * A full disk (the file system, a user quota on it, or SQLite's file) as 507 insufficient_storage:
 * the client may retry, or resume an upload, once space returns. null for any other error.
 */
export function diskFullError(error: unknown, advice = 'retry later'): AppError | null {
  const code = (error as { code?: unknown } | null)?.code;
  return DISK_FULL.has(code) ? new AppError('insufficient_storage', `the server ran out of disk space; ${advice}`) : null;
}

/** An error as @tus/server and its stores raise them: a status and a plain-text body. */
export function isTusError(error: unknown): error is { status_code: number; body: string } {
  return typeof error === 'object' && error !== null && 'status_code' in error && 'body' in error;
}
