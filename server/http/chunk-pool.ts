// Reused 1 MiB buffers for the bytes of downloads (a file to a response, a file into a ZIP).
//
// Why reuse: every 1 MiB chunk fs.createReadStream reads is a fresh buffer outside the V8 heap,
// and each ~64 MiB of them forces a full GC ("external memory pressure"). In this server's heap
// those GCs cost more than the copy itself (bench/README.md, "Where a signed GET's time goes").
// A buffer comes back only once the response's write callback says the kernel has its bytes.
const CHUNK = 1024 * 1024;
/** Idle buffers kept for the next downloads: memory stays flat (a few per download in flight). */
const POOL_LIMIT = 16;
const pool: Buffer[] = [];

export const CHUNK_SIZE = CHUNK;

export function takeChunk(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

export function giveChunk(buffer: Buffer): void {
  if (pool.length < POOL_LIMIT) pool.push(buffer);
}

/**
 * Views of pool buffers that were handed to a stream (lent), by their memory: a view that comes
 * out of the stream exactly as it went in (same memory, offset 0, same length) returns its buffer
 * once written. Anything else a stream made of it (a copy, a slice) is not the lent view, so its
 * buffer is simply left to the GC: a buffer is never reused while a part of it may still be queued.
 */
const lent = new WeakMap<ArrayBufferLike, { buffer: Buffer; length: number }>();

/** `buffer`'s first `length` bytes, as a chunk that returnLent() can give back after its write. */
export function lend(buffer: Buffer, length: number): Buffer {
  lent.set(buffer.buffer, { buffer, length });
  return buffer.subarray(0, length);
}

/** Call once a chunk's write has completed; returns lent buffers to the pool, ignores the rest. */
export function returnLent(chunk: Uint8Array): void {
  const loan = lent.get(chunk.buffer);
  if (loan === undefined || chunk.byteOffset !== 0 || chunk.byteLength !== loan.length) return;
  lent.delete(chunk.buffer);
  giveChunk(loan.buffer);
}
