// Requests node:http refuses before any route sees them: headers past its limit (16 KiB, Node's
// --max-http-header-size), bytes that are not HTTP, headers that did not all arrive within
// headersTimeout. Node's own answer is a bare status line without a body; here the client gets the
// problem+json every other refusal carries, with its stable code. As Node does, the answer is
// written only when no answer on the connection has begun, and the connection is then closed at
// once: what follows on it cannot be read as requests, and a request in flight on it is over.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, PROBLEM_CONTENT_TYPE, type ErrorCode } from '../errors.ts';

const REFUSALS: Record<string, { code: ErrorCode; detail: string }> = {
  HPE_HEADER_OVERFLOW: { code: 'headers_too_large', detail: 'the request headers are larger than the server reads (16 KiB)' },
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'request_timeout', detail: 'the request headers did not all arrive in time' },
};
const MALFORMED = { code: 'bad_request', detail: 'the request is not valid HTTP/1.1' } as const;

/** node:http's 'clientError' listener. */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A connection the client reset, or one whose answer has begun, can only be closed.
  const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (error.code === 'ECONNRESET' || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  const { code, detail } = REFUSALS[error.code ?? ''] ?? MALFORMED;
  const refusal = new AppError(code, detail);
  const body = JSON.stringify(refusal.toProblem());
  socket.write(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
      `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Tus-Resumable: 1.0.0\r\n' +
      'Connection: close\r\n\r\n' +
      body,
  );
  socket.destroy();
}
