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
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  offset_mismatch: { status: 409, title: 'Upload-Offset does not match the upload' },
  conflict: { status: 409, title: 'Conflict' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  upload_too_large: { status: 413, title: 'Upload too large' },
  quota_exceeded: { status: 413, title: 'Quota exceeded' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  upload_locked: { status: 423, title: 'Upload is locked by another request' },
  checksum_mismatch: { status: 460, title: 'Checksum mismatch' },
  internal: { status: 500, title: 'Internal server error' },
  not_implemented: { status: 501, title: 'Not implemented' },
  unavailable: { status: 503, title: 'Service unavailable' },
  insufficient_storage: { status: 507, title: 'Insufficient storage' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

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
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? ERROR_CODES[code].title);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
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
 */
const TUS_MESSAGES: Array<[number, string, ErrorCode]> = [
  [403, 'Upload-Offset header required', 'invalid_header'],
  [403, 'Content-Type header required', 'unsupported_media_type'],
  [400, 'Request aborted', 'bad_request'],
  [400, 'Cannot terminate an already completed upload', 'conflict'],
  [400, 'Upload-Length or Upload-Defer-Length', 'invalid_header'],
  [400, 'Upload-Metadata is invalid', 'invalid_metadata'],
  [400, 'Invalid ', 'invalid_header'],
  [404, '', 'not_found'],
  [409, '', 'offset_mismatch'],
  [410, '', 'not_found'],
  [412, 'Tus-Resumable Required', 'precondition_failed'],
  [413, '', 'upload_too_large'],
  [500, 'failed to acquire lock', 'upload_locked'],
  [501, '', 'not_implemented'],
];

export function tusErrorToAppError(status: number, body: string): AppError {
  for (const [s, prefix, code] of TUS_MESSAGES) {
    if (s === status && body.startsWith(prefix)) return new AppError(code, body.trim() || undefined);
  }
  return new AppError('internal');
}
