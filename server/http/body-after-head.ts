// A response whose bytes a route writes to the node:http response itself, after Hono has written
// the status line and every header (the route's, CORS, X-Request-Id, …): the route answers with a
// body that is already done, and the adapter's closing `end()` is where the bytes start instead.
// Used where writing ourselves lets buffers be reused once the kernel has them (chunk-pool.ts).
//
// Whoever ends the response another way (an error page) gets the original end() and `release` is
// called; a client gone before the first byte is released all the same.
import type { ServerResponse } from 'node:http';

/** Writes the body; true when all of it went out, false when it must be cut (the socket destroyed). */
export type BodyWriter = (res: ServerResponse) => Promise<boolean>;

export function bodyAfterHead(outgoing: ServerResponse, status: number, headers: Headers, write: BodyWriter, release: () => void): Response {
  const originalEnd = outgoing.end as (this: ServerResponse, ...args: unknown[]) => ServerResponse;
  let started = false;
  // Gone before the adapter got to end(): nothing will be sent, what was opened goes now.
  outgoing.once('close', () => {
    if (!started) release();
  });
  outgoing.end = function end(this: ServerResponse, ...args: unknown[]) {
    outgoing.end = originalEnd as ServerResponse['end'];
    if (started || args.length > 0 || outgoing.destroyed) {
      // Someone else's body (an error answer after all): theirs goes out, ours never will.
      release();
      return originalEnd.apply(this, args);
    }
    started = true;
    write(outgoing).then(
      (complete) => {
        release();
        if (complete) originalEnd.call(outgoing);
        else outgoing.destroy();
      },
      () => {
        release();
        outgoing.destroy();
      },
    );
    return this;
  } as ServerResponse['end'];
  const done = new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  return new Response(done, { status, headers });
}
