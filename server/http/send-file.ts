// A local file's bytes straight from its descriptor to the node:http response, through two reused
// 1 MiB buffers: read into one while the other is being written, reuse each only once its write
// callback says the kernel has it.
//
// Why not a stream: fresh buffers per chunk cost full GCs in this server's heap (chunk-pool.ts,
// bench/README.md). Hono still writes every header (body-after-head.ts).
import { read } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { ReadStream } from 'node:fs';
import { bodyAfterHead } from './body-after-head.ts';
import { CHUNK_SIZE as CHUNK, giveChunk as give, takeChunk as take } from './chunk-pool.ts';

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
  return bodyAfterHead(outgoing, status, headers, async (res) => (await pump(res, span)) === 'done', () => void span.file.destroy());
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
