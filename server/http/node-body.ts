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

/** Told when a body went silent and was ended (an object, not a closure: see NodeBodySource). */
export interface BodyIdleListener {
  bodyIdle(): void;
}

/**
 * `idleTimeoutMs`: a body that brings no byte for this long while it is being waited for is ended:
 * the bytes already received go to the store as a shorter PATCH would (kept, resumable), and the
 * response then closes the connection (@hono/node-server drains an unread body for 500 ms, then
 * closes). Time the server itself holds the body back (its queue is full) does not count.
 */
export function requestBodyFromNode(incoming: IncomingMessage, idleTimeoutMs: number, onIdle?: BodyIdleListener): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(new NodeBodySource(incoming, idleTimeoutMs, onIdle), { highWaterMark: HIGH_WATER_CHUNKS });
}

/**
 * The stream's source. A class rather than closures: an upload request keeps it for as long as its
 * body streams, and methods on the prototype cost nothing per request where each closure costs its
 * own object (bench/README.md, "What a held PATCH keeps, object by object"). Only the listeners
 * and the idle timer's callback are per-request functions.
 */
class NodeBodySource implements UnderlyingDefaultSource<Uint8Array> {
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #finished = false;
  #idle: NodeJS.Timeout | undefined;
  readonly #incoming: IncomingMessage;
  readonly #idleTimeoutMs: number;
  readonly #onIdleListener: BodyIdleListener | undefined;

  constructor(incoming: IncomingMessage, idleTimeoutMs: number, onIdle: BodyIdleListener | undefined) {
    this.#incoming = incoming;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#onIdleListener = onIdle;
  }

  pull(controller: ReadableStreamDefaultController<Uint8Array>): void {
    // Listeners are attached on the first pull (right after construction, see above).
    if (this.#controller === undefined) {
      this.#controller = controller;
      this.#attach();
    }
    if (this.#finished) return;
    this.#incoming.resume();
    this.#arm();
  }

  cancel(reason: unknown): void {
    this.#finished = true;
    this.#disarm();
    this.#incoming.destroy(reason instanceof Error ? reason : undefined);
  }

  #attach(): void {
    const incoming = this.#incoming;
    if (incoming.readableEnded) return this.#end();
    if (incoming.destroyed) return this.#fail(disconnected());
    incoming.on('data', this.#onData);
    // `on`, not `once`: the handler acts once anyway (#finished), and each `once` wraps its
    // listener in a bound function and a state object that a held upload keeps alive. One
    // listener for the three: each function is one more object per held upload.
    incoming.on('end', this.#onStop);
    incoming.on('error', this.#onStop);
    // A client that disconnects mid-body: 'close' without 'end'.
    incoming.on('close', this.#onStop);
  }

  readonly #onData = (chunk: Buffer): void => {
    // Bytes after an idle end are not this body's any more (the connection is being closed).
    if (this.#finished) return;
    const controller = this.#controller!;
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) <= 0) {
      this.#incoming.pause();
      this.#disarm();
    } else this.#arm();
  };

  /** 'end' and 'close' bring no argument, 'error' its error; the body ended if its end was read. */
  readonly #onStop = (error?: Error): void => {
    if (error !== undefined) this.#fail(error);
    else if (this.#incoming.readableEnded) this.#end();
    else this.#fail(disconnected());
  };
  readonly #onIdle = (): void => {
    this.#end();
    this.#incoming.pause();
    this.#onIdleListener?.bodyIdle();
  };

  #end(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#disarm();
    this.#controller!.close();
  }

  #fail(error: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#disarm();
    this.#controller!.error(error);
  }

  #arm(): void {
    this.#disarm();
    if (this.#finished || this.#controller === undefined) return;
    this.#idle = setTimeout(this.#onIdle, this.#idleTimeoutMs);
    this.#idle.unref();
  }

  #disarm(): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
  }
}

function disconnected(): Error {
  return Object.assign(new Error('the client disconnected'), { code: 'ECONNRESET' });
}
