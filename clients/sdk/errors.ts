// One error class for every refusal the server answers, typed by its stable problem `code`
// (RFC 9457 problem+json, docs/api.md "Errors"). The codes come from the server's own table, imported
// as a type only: nothing of the server reaches a client bundle, and the list is written once.
import type { ErrorCode } from '../../server/errors.ts';

/** Codes the server answers, plus two the client reports itself. */
export type StreamLineErrorCode =
  | ErrorCode
  /** The server could not be reached (DNS, refused connection, reset). */
  | 'network_error'
  /** The server answered something that is not the expected JSON or problem+json. */
  | 'unexpected_response';

export class StreamLineError extends Error {
  constructor(
    readonly code: StreamLineErrorCode,
    /** The HTTP status, or 0 when no answer arrived. */
    readonly status: number,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${code}: ${detail}` : code, options);
    this.name = 'StreamLineError';
  }
}

export function isStreamLineError(error: unknown, code?: StreamLineErrorCode): error is StreamLineError {
  return error instanceof StreamLineError && (code === undefined || error.code === code);
}

/** The error a problem+json answer (or any non-2xx answer) stands for. */
export function errorFromResponse(status: number, contentType: string | null, text: string): StreamLineError {
  if (contentType?.split(';')[0]?.trim() === 'application/problem+json') {
    try {
      const body = JSON.parse(text) as { code?: unknown; detail?: unknown; title?: unknown };
      if (typeof body.code === 'string') {
        const detail = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : undefined;
        return new StreamLineError(body.code as ErrorCode, status, detail);
      }
    } catch {
      // not JSON after all: reported below
    }
  }
  return new StreamLineError('unexpected_response', status, `HTTP ${status}: ${text.slice(0, 200)}`);
}
