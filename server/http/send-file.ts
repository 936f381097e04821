// A local file's bytes straight from its descriptor to the node:http response, through two reused
// 1 MiB buffers: read into one while the other is being written, reuse each only once its write
// callback says the kernel has it.
//
// Why not a stream: every 1 MiB chunk fs.createReadStream reads is a fresh buffer outside the V8
// heap, and each 64 MiB of them forces a full GC ("external memory pressure"). In this server's
// heap those GCs cost more than the copy itself, where a bare node:http pipe's tiny heap makes
// them cheap. With reused buffers nothing is allocated per chunk (figures in bench/README.md,
// "Where a signed GET's time goes").
//
// Hono still writes the status line and every header (the route's, CORS, X-Request-Id, …): the
// route answers with a body that is already done, and the adapter's closing `end()` is where the
// bytes start instead. Whoever ends the response another way (an error page) gets the original
// end(); a client gone before the first byte closes the descriptor all the same.
import { read } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { ReadStream } from 'node:fs';

const CHUNK = 1024 * 1024;
/** Idle buffers kept for the next downloads: memory stays flat (two per download in flight). */
const POOL_LIMIT = 16;
const pool: Buffer[] = [];
const take = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
const give = (buffer: Buffer): void => void (pool.length < POOL_LIMIT && pool.push(buffer));

export interface FileSpan {
  /** The opened file; its descriptor is read directly and closed (destroy) when the response ends. */
  file: ReadStream & { fd: number };
  start: number;
  length: number;
  /** Told when the file ended before `length` bytes: the response is cut, not ended. */
  onShort?: (sent: number) => void;
}

/** A fs.ReadStream on an open descriptor that nobody has read from yet. */
export function isUnreadFileStream(body: unknown): body is ReadStream & { fd: number } {
  const s = body as { fd?: unknown; bytesRead?: unknown; destroy?: unknown } | null;
  return typeof s?.fd === 'number' && s.bytesRead === 0 && typeof s.destroy === 'function';
}

/**
 * A Response whose body Hono finishes at once; when the adapter then calls `end()` on `outgoing`
 * (after writeHead), the file's bytes are written instead, and the response ends after the last.
 */
export function fileResponse(outgoing: ServerResponse, status: number, headers: Headers, span: FileSpan): Response {
  const originalEnd = outgoing.end as (this: ServerResponse, ...args: unknown[]) => ServerResponse;
  let started = false;
  const release = (): void => void span.file.destroy();
  // Gone before the adapter got to end(): nothing will be sent, the descriptor goes now.
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
    pump(outgoing, span).then(
      (outcome) => {
        release();
        if (outcome === 'done') originalEnd.call(outgoing);
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

type Outcome = 'done' | 'short' | 'aborted';

async function pump(res: ServerResponse, { file, start, length, onShort }: FileSpan): Promise<Outcome> {
  const buffers = [take(), take()];
  const writes: Array<Promise<void> | null> = [null, null];
  let position = start;
  let sent = 0;
  try {
    for (let i = 0; sent < length; i ^= 1) {
      await writes[i];
      if (res.destroyed) return 'aborted';
      const n = await readAt(file.fd, buffers[i]!, Math.min(CHUNK, length - sent), position);
      if (n === 0) {
        onShort?.(sent);
        return 'short';
      }
      position += n;
      sent += n;
      writes[i] = writeOut(res, buffers[i]!.subarray(0, n));
    }
    await Promise.all(writes);
    return res.destroyed ? 'aborted' : 'done';
  } finally {
    // A write still pending on a destroyed socket may hold a buffer: wait for it to settle first.
    void Promise.all(writes).then(() => buffers.forEach(give));
  }
}

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, length, position, (error, n) => (error ? reject(error) : resolve(n))));
}

/** Settles when the kernel has the bytes, or the connection is gone (never rejects). */
function writeOut(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const gone = (): void => resolve();
    res.once('close', gone);
    res.write(chunk, () => {
      res.off('close', gone);
      resolve();
    });
  });
}
