// Structured logs: one JSON line per event on stdout (pino). The request line and the lifecycle
// events a request causes (upload.created, upload.finished, upload.failed, upload.discarded,
// file.deleted) carry its request_id, passed along with the request's work rather than taken from
// an AsyncLocalStorage (its cost on Node 20: server/db/sqlite-gate.ts); other lines name the upload
// or file they concern.
//
// Secrets never reach a line: request headers are never logged, nor query strings (a signed link's
// `sig`), and paths that carry a token (batch downloads) are logged with the token replaced. The
// redaction below is a second net for a field someone adds later under an obvious name.
import pino, { type DestinationStream, type Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['token', 'sig', 'authorization', 'cookie', 'headers', '*.token', '*.sig', '*.authorization', '*.cookie', '*.headers', 'err.config'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Path segments that are bearer secrets in themselves: whoever reads them holds the download. */
const SECRET_PATHS: Array<[RegExp, string]> = [[/^(\/v1\/files\/batch-download\/)[^/]+$/, '$1[token]']];

export function loggablePath(path: string): string {
  for (const [pattern, replacement] of SECRET_PATHS) if (pattern.test(path)) return path.replace(pattern, replacement);
  return path;
}
