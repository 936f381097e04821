// The SHA-256 of every upload, computed while its bytes stream in (no second read at the end).
// The hash state of an upload lives in memory between its PATCH requests, tagged with the number
// of bytes it covers. Whenever that number differs from the upload's offset (after a restart, a
// failed write, or a PATCH served by another instance) the state is rebuilt from the bytes already
// stored, once. Uploads are append-only, so a state covering [0, offset) is always the right one.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { Storage } from '../server/storage/types.ts';

interface DigestState {
  hash: Hash;
  bytes: number;
}

export interface Digests {
  /** Wraps the bytes about to be written at `offset`; call `settle` with the offset the store reports. */
  observe(uploadId: string, offset: number, source: Readable): Promise<{ stream: Readable; settle(newOffset: number | null): void }>;
  /** The hex digest of an upload whose `size` bytes are all stored. */
  finish(uploadId: string, size: number): Promise<string>;
  discard(uploadId: string): void;
  /** How many bytes were read back from storage to rebuild states (for tests and metrics). */
  readonly rebuiltBytes: number;
}

export function createDigests(storage: Storage): Digests {
  const states = new Map<string, DigestState>();
  let rebuiltBytes = 0;

  async function stateAt(uploadId: string, offset: number): Promise<DigestState> {
    const state = states.get(uploadId);
    states.delete(uploadId);
    if (state && state.bytes === offset) return state;
    const hash = createHash('sha256');
    const bytes = await storage.readUpload(uploadId, 0, offset);
    if (!bytes) throw new Error(`the first ${offset} bytes of upload ${uploadId} cannot be read back`);
    for await (const chunk of bytes) hash.update(chunk as Buffer);
    rebuiltBytes += offset;
    return { hash, bytes: offset };
  }

  return {
    async observe(uploadId, offset, source) {
      const state = await stateAt(uploadId, offset);
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          state.hash.update(chunk);
          state.bytes += chunk.length;
          callback(null, chunk);
        },
      });
      source.on('error', (error) => tap.destroy(error));
      return {
        stream: source.pipe(tap),
        // Keep the state only when it covers exactly what reached storage; otherwise rebuild later.
        settle(newOffset) {
          if (newOffset !== null && newOffset === state.bytes) states.set(uploadId, state);
        },
      };
    },

    async finish(uploadId, size) {
      const state = await stateAt(uploadId, size);
      return state.hash.digest('hex');
    },

    discard(uploadId) {
      states.delete(uploadId);
    },

    get rebuiltBytes() {
      return rebuiltBytes;
    },
  };
}
