// A local file's bytes as a Readable of lent pool buffers (http/chunk-pool.ts), read from its open
// descriptor: what fs.createReadStream does, without a fresh 1 MiB buffer per chunk. Whoever writes
// a chunk to the socket gives its buffer back (returnLent) once the write completes; chunks that
// never get there are left to the GC, so a buffer is never reused while its bytes may be queued.
import { read, type ReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { CHUNK_SIZE, giveChunk, lend, takeChunk } from '../http/chunk-pool.ts';

/**
 * Reads `file` (opened, unread: http/send-file.ts isUnreadFileStream) from byte 0 to its end, but
 * never more than `limit` bytes; destroying the result closes the file at once.
 */
export function fileChunks(file: ReadStream & { fd: number }, limit: number): Readable {
  let position = 0;
  let reading = false;
  let closeAfterRead = false;
  return new Readable({
    // One chunk at a time: the next read starts when the consumer asks for more.
    highWaterMark: 0,
    read() {
      const length = Math.min(CHUNK_SIZE, limit - position);
      if (length <= 0) return void this.push(null);
      const buffer = takeChunk();
      reading = true;
      read(file.fd, buffer, 0, length, position, (error, n) => {
        reading = false;
        const lending = !closeAfterRead && !this.destroyed && !error && n > 0;
        if (!lending) giveChunk(buffer);
        // Destroyed meanwhile: the descriptor is closed only now, so that no read lands on a
        // number the kernel already gave to another file.
        if (closeAfterRead) return void file.destroy();
        if (this.destroyed) return;
        if (error) return void this.destroy(error);
        if (n === 0) return void this.push(null);
        position += n;
        this.push(lend(buffer, n));
      });
    },
    destroy(error, callback) {
      if (reading) closeAfterRead = true;
      else file.destroy();
      callback(error);
    },
  });
}
