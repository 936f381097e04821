// The request body as a web stream, without copying it. @hono/node-server builds request bodies
// with Readable.toWeb(), which in Node 20 copies every chunk (`new Uint8Array(chunk)`): a second
// pass over every byte, and its garbage, on the largest bodies the server receives. tus turns the
// web stream straight back into a Node stream (Readable.fromWeb, which does not copy), so the
// bytes cross from the socket to the file system without an extra pass (figures in
// bench/README.md, "Figures behind choices in the code").
//
// A web stream pulls as soon as it is built to fill its queue, so reading starts at once; when tus
// refuses a body without reading it (409, 413 on Upload-Length), at most HIGH_WATER_CHUNKS are
// queued before the socket is paused, and @hono/node-server then drains or closes the connection.
// A queue of 0 would read strictly on demand, but pausing and resuming the socket for every chunk
// costs CPU on every byte.
import type { IncomingMessage } from 'node:http';

/**
 * Chunks queued before the socket is paused (~256 KiB of 64 KiB reads): enough for full
 * throughput, little enough that parallel uploads hold no megabytes of queued body each
 * (`npm run bench`; figures in bench/README.md, "Figures behind choices in the code").
 */
const HIGH_WATER_CHUNKS = 4;

export interface BodyOptions {
  /**
   * A body that brings no byte for this long while it is being waited for is ended: the bytes
   * already received go to the store as a shorter PATCH would (kept, resumable), and the response
   * then closes the connection (@hono/node-server drains an unread body for 500 ms, then closes).
   * Time the server itself holds the body back (its queue is full) does not count.
   */
  idleTimeoutMs: number;
  onIdle?: () => void;
}

export function requestBodyFromNode(incoming: IncomingMessage, options: BodyOptions): ReadableStream<Uint8Array> {
  let attached = false;
  let finished = false;
  let idle: NodeJS.Timeout | undefined;
  const disarm = () => {
    clearTimeout(idle);
    idle = undefined;
  };
  let arm = () => {};

  // Listeners are attached on the first pull (right after construction, see above).
  function attach(controller: ReadableStreamDefaultController<Uint8Array>): void {
    const end = () => {
      if (finished) return;
      finished = true;
      disarm();
      controller.close();
    };
    const fail = (error: Error) => {
      if (finished) return;
      finished = true;
      disarm();
      controller.error(error);
    };
    arm = () => {
      disarm();
      if (finished) return;
      idle = setTimeout(() => {
        end();
        incoming.pause();
        options.onIdle?.();
      }, options.idleTimeoutMs);
      idle.unref();
    };
    if (incoming.readableEnded) return end();
    if (incoming.destroyed) return fail(disconnected());
    incoming.on('data', (chunk: Buffer) => {
      // Bytes after an idle end are not this body's any more (the connection is being closed).
      if (finished) return;
      controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if ((controller.desiredSize ?? 0) <= 0) {
        incoming.pause();
        disarm();
      } else arm();
    });
    // `on`, not `once`: both handlers act once anyway (`finished`), and each `once` wraps its
    // listener in a bound function and a state object that a held upload keeps alive.
    incoming.on('end', end);
    incoming.on('error', fail);
    // A client that disconnects mid-body: 'close' without 'end'.
    incoming.on('close', () => fail(disconnected()));
  }

  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (!attached) {
          attached = true;
          attach(controller);
        }
        if (finished) return;
        incoming.resume();
        arm();
      },
      cancel(reason) {
        finished = true;
        disarm();
        incoming.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: HIGH_WATER_CHUNKS },
  );
}

function disconnected(): Error {
  return Object.assign(new Error('the client disconnected'), { code: 'ECONNRESET' });
}
