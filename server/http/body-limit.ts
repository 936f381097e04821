// Request bodies outside tus are small JSON documents (a batch's keys, nothing else): each is
// bounded by BODY_LIMIT_BYTES, and one that is larger is answered 413 `body_too_large` before it
// is buffered. tus bodies (/v1/uploads) stream to storage and have their own limits
// (MAX_UPLOAD_BYTES, quotas), and the original API's init/part/complete carry file bytes under a cap
// of their own (LEGACY_API_MAX_BODY_BYTES, server/routes/legacy-body.ts): both are left alone.
//
// hono/body-limit does the counting: a declared Content-Length over the limit is refused before a
// byte is read; a chunked body is read into a buffer that never grows past the limit and is
// refused as soon as it passes it. What is left unread is @hono/node-server's: once the answer is
// out it discards at most 64 MiB or 500 ms of it, then closes the connection —
// test/server/http/body-limit.test.ts measures the memory.
//
// Closing a socket with unread bytes makes the kernel answer them with a reset, and a client still
// sending loses the 413 it has not read yet (its own write fails first). So a refused connection
// closes lingering (server/http/unread-body.ts).
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AppError } from '../errors.ts';
import { lingerOnClose } from './unread-body.ts';

export function boundedBodies(options: { maxBytes: number; exceptUnder: readonly string[] }): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: options.maxBytes,
    onError: (c) => {
      const socket = (c.env as HttpBindings | undefined)?.incoming?.socket;
      if (socket) lingerOnClose(socket);
      // The rest of the body is not wanted: the connection is not kept for another request.
      throw new AppError('body_too_large', `request bodies here are limited to ${options.maxBytes} bytes`, { Connection: 'close' });
    },
  });
  return (c, next) => {
    const path = c.req.path;
    if (options.exceptUnder.some((except) => path === except || path.startsWith(`${except}/`))) return next();
    // Without either header a request has no body (RFC 9112 §6.3): nothing to count or rebuild.
    if (c.req.header('content-length') === undefined && c.req.header('transfer-encoding') === undefined) return next();
    return limit(c, next);
  };
}
