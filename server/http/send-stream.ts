// A Node stream as a response body, handed to @hono/node-server as a web stream that it writes to
// the socket chunk by chunk, waiting for 'drain'.
//
// Not Readable.toWeb: in Node 20 it copies every chunk into a fresh Uint8Array ("to detach it from
// the pool"), a second pass over every byte plus 1 MiB of garbage per chunk (bench/README.md,
// "Where a signed GET's time goes"). Chunks of a Node stream belong to whoever
// receives them and this (non-byte) stream never transfers their buffers, so they go as they are.
//
// The body is held to the length the headers promised: a source that ends early (a file truncated
// while it is read) or runs long errors the web stream, and the adapter then destroys the socket,
// so the client sees a cut connection instead of waiting forever for bytes that will never come.
// When the client goes away the adapter cancels the web stream, which destroys the source and so
// releases its file descriptor at once.
//
// streamToResponse writes the chunks to the node:http response itself instead (body-after-head.ts),
// with the same length rule and the same release on a client gone: there each chunk's write
// callback is known, so a chunk lent from the buffer pool goes back once the kernel has it
// (chunk-pool.ts). The batch ZIP takes that way, its file chunks being lent (zip/file-chunks.ts).
import type { ServerResponse } from 'node:http';
import { finished, type Readable } from 'node:stream';
import { bodyAfterHead } from './body-after-head.ts';
import { returnLent } from './chunk-pool.ts';

export interface BodyLength {
  /** What Content-Length promised; null when the response carries none. */
  expected: number | null;
  /** Told once when the source ended after `sent` of the expected bytes. */
  onShort?: (sent: number) => void;
}

export function streamResponse(status: number, headers: Headers, body: Readable, length: BodyLength): Response {
  return new Response(exactWebStream(body, length), { status, headers });
}

export function exactWebStream(source: Readable, { expected, onShort }: BodyLength): ReadableStream<Uint8Array> {
  let sent = 0;
  let settled = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const fail = (error: Error): void => {
          if (settled) return;
          settled = true;
          source.destroy();
          controller.error(error);
        };
        source.on('data', (chunk: Uint8Array) => {
          if (settled) return;
          sent += chunk.byteLength;
          if (expected !== null && sent > expected) return fail(new Error(`the body ran past the ${expected} bytes promised`));
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) source.pause();
        });
        finished(source, (error) => {
          if (error) return fail(error);
          if (expected !== null && sent < expected) {
            onShort?.(sent);
            return fail(new Error(`the body ended after ${sent} of the ${expected} bytes promised`));
          }
          if (settled) return;
          settled = true;
          controller.close();
        });
      },
      pull() {
        source.resume();
      },
      cancel() {
        settled = true;
        source.destroy();
      },
    },
    // One chunk (1 MiB from the file) waits while the previous one is in the socket.
    { highWaterMark: 1 },
  );
}

/** `body` written to `outgoing` after Hono's headers, held to `length` as exactWebStream holds it. */
export function streamToResponse(outgoing: ServerResponse, status: number, headers: Headers, body: Readable, length: BodyLength): Response {
  return bodyAfterHead(outgoing, status, headers, (res) => writeExact(res, body, length), () => void body.destroy());
}

function writeExact(res: ServerResponse, source: Readable, { expected, onShort }: BodyLength): Promise<boolean> {
  return new Promise((resolve) => {
    let sent = 0;
    let settled = false;
    const settle = (complete: boolean): void => {
      if (settled) return;
      settled = true;
      res.off('close', gone);
      res.off('drain', resume);
      source.off('data', onData);
      if (!complete) source.destroy();
      resolve(complete);
    };
    const gone = (): void => settle(false);
    const resume = (): void => void source.resume();
    const onData = (chunk: Uint8Array): void => {
      sent += chunk.byteLength;
      if (expected !== null && sent > expected) return settle(false);
      const more = res.write(chunk, (error) => {
        if (!error) returnLent(chunk);
      });
      // The socket's buffer is full: the source waits for 'drain', so memory stays bounded.
      if (!more) source.pause();
    };
    res.once('close', gone);
    res.on('drain', resume);
    source.on('data', onData);
    finished(source, (error) => {
      if (error) return settle(false);
      if (expected !== null && sent < expected) {
        onShort?.(sent);
        return settle(false);
      }
      settle(true);
    });
  });
}
