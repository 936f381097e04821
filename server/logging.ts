// Structured logs: one JSON line per event on stdout (pino). Every line written while a request is
// being handled carries its request_id (server/async-scope.ts + pino's mixin), so the upload lifecycle
// events the hooks log can be joined to the request that caused them.
//
// Secrets never reach a line: request headers are never logged, nor query strings (a signed link's
// `sig`), and paths that carry a token (batch downloads) are logged with the token replaced. The
// redaction below is a second net for a field someone adds later under an obvious name.
import pino, { type DestinationStream, type Logger } from 'pino';
import { currentScope, withScope } from './async-scope.ts';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    // A new object each time: pino merges the line's own fields into it.
    mixin: () => {
      const requestId = currentScope()?.requestId;
      return requestId === undefined ? {} : { request_id: requestId };
    },
    redact: {
      paths: ['token', 'sig', 'authorization', 'cookie', 'headers', '*.token', '*.sig', '*.authorization', '*.cookie', '*.headers', 'err.config'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Runs `fn` with every log line inside it tagged with `requestId`. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return withScope({ requestId }, fn);
}

/** Path segments that are bearer secrets in themselves: whoever reads them holds the download. */
const SECRET_PATHS: Array<[RegExp, string]> = [[/^(\/v1\/files\/batch-download\/)[^/]+$/, '$1[token]']];

export function loggablePath(path: string): string {
  for (const [pattern, replacement] of SECRET_PATHS) if (pattern.test(path)) return path.replace(pattern, replacement);
  return path;
}
