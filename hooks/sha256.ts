// The SHA-256 of every upload, computed while its bytes stream in (no second read at the end).
// The hash state of an upload lives in memory between its PATCH requests, tagged with the number
// of bytes it covers. Whenever that number differs from the upload's offset (after a restart, a
// failed write, or a PATCH served by another instance) the state is rebuilt. Uploads are
// append-only, so a state covering [0, offset) is always the right one.
//
// Rebuilding needs the bytes already stored, and S3 cannot give them back: the parts of an open
// multipart upload are unreadable until it completes. So there are two engines, chosen by the
// storage's `digestCheckpointBytes`:
//  - local disk (null): node:crypto in memory; after a restart the state is rebuilt by reading the
//    upload's bytes from disk once.
//  - S3 (8 MiB): hash-wasm, whose internal state can be saved (116 bytes) and restored. The state
//    is saved in SQLite (upload_digests) at every multiple of 8 MiB the bytes pass — every part end
//    lies on that grid, so whatever offset S3 holds after a crash mid-PATCH has a saved state — and
//    at the end of each PATCH (its tail is readable: `<id>.part`). A rebuild restores the highest
//    saved state from which the missing bytes are readable, and hashes only those.
// Why not hash-wasm everywhere: it hashes several times slower than node:crypto (SHA-NI), which
// would more than double the local path's CPU per GiB, while node:crypto's state cannot be exported
// at all; so S3 pays hash-wasm's price only where it buys correctness. Hashing on a worker thread
// (messages per chunk, or a shared ring buffer) measured slower than inline on two cores: the
// copies and wake-ups cost more than the update() calls they move off the event loop. Figures in
// bench/README.md, "Figures behind choices in the code".
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { IHasher } from 'hash-wasm';
import type { Repository } from '../server/db/contract.ts';
import { AppError } from '../server/errors.ts';
import type { Storage } from '../server/storage/types.ts';

interface Sha256 {
  update(chunk: Uint8Array): void;
  hex(): string;
  /** The internal state, or null for an engine that cannot export it. */
  save(): Uint8Array | null;
}

interface DigestState {
  hash: Sha256;
  bytes: number;
}

type Checkpoints = Pick<Repository, 'saveDigestCheckpoint' | 'digestCheckpoints' | 'pruneDigestCheckpoints'>;

export interface ObservedWrite {
  /** What goes to storage: the source's bytes, hashed on their way. */
  stream: Readable;
  /**
   * Ends `stream` early and cleanly (a refusal): storage gets end-of-stream, not an error, so every
   * store's write returns (a destroyed stream can hang one that has not started reading it yet, as
   * @tus/s3-store's MultiStream does behind an incomplete part). Later bytes are dropped unhashed.
   */
  cut(): void;
  /**
   * Call with the offset the store reports (null when the write failed). Resolves once the states
   * saved on the way are written (it rejects if one could not be).
   */
  settle(newOffset: number | null): Promise<void>;
}

export interface Digests {
  /**
   * Wraps the bytes about to be written at `offset`; call `settle` with the offset the store
   * reports. `watcher` is shown every chunk on its way to storage (until a cut).
   */
  observe(uploadId: string, offset: number, source: Readable, watcher?: ChunkWatcher): Promise<ObservedWrite>;
  /** The hex digest of an upload whose `size` bytes are all stored. */
  finish(uploadId: string, size: number): Promise<string>;
  discard(uploadId: string): void;
}

/** Sees each chunk that goes to storage, as the tap passes it on. */
export interface ChunkWatcher {
  chunk(bytes: Buffer): void;
}

// The engines are classes rather than objects of closures: a held PATCH keeps its hash for as long
// as its body streams, and methods on a prototype cost nothing per upload (bench/README.md, "What a
// held PATCH keeps, object by object").
class NodeSha256 implements Sha256 {
  readonly #hash = createHash('sha256');
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
  }
  hex(): string {
    return this.#hash.digest('hex');
  }
  save(): null {
    return null;
  }
}

class WasmSha256 implements Sha256 {
  constructor(private readonly hasher: IHasher) {}
  update(chunk: Uint8Array): void {
    this.hasher.update(chunk);
  }
  hex(): string {
    return this.hasher.digest('hex');
  }
  save(): Uint8Array {
    return this.hasher.save();
  }
}

async function wasmSha256(state?: Uint8Array): Promise<Sha256> {
  // Loaded on first use: only S3 needs it, and hash-wasm keeps every algorithm's WebAssembly as a
  // string (~0.5 MiB of heap on a file-storage server for nothing).
  const { createSHA256 } = await import('hash-wasm');
  const hasher: IHasher = await createSHA256();
  hasher.init();
  if (state) hasher.load(state);
  return new WasmSha256(hasher);
}

/** What every write's tap shares: the states kept between requests, and where checkpoints go. */
interface DigestEngine {
  states: Map<string, DigestState>;
  step: number | null;
  checkpoints: Checkpoints;
}

/** Saves the state at its offset after the saves before it (`saving`: the chain of one write). */
function checkpoint(checkpoints: Checkpoints, saving: Promise<void>, uploadId: string, state: DigestState): Promise<void> {
  const saved = state.hash.save();
  if (!saved || state.bytes <= 0) return saving;
  const offset = state.bytes;
  return saving.then(() => checkpoints.saveDigestCheckpoint(uploadId, offset, saved));
}

const ignore = (): void => {};
/** Where each write's chain of saves starts: one settled promise, shared (saves chain after it). */
const NOTHING_SAVING: Promise<void> = Promise.resolve();

/**
 * The stage between the source and storage: hashes each chunk as it passes. One object per write,
 * with its listeners as its only closures.
 */
class DigestTap extends Transform implements ObservedWrite {
  readonly stream: Readable = this;
  #cut = false;
  /**
   * The transform cannot wait for the database: saves are chained in order, and settle waits for
   * them (a failed one fails the write there, as it did the stream's).
   */
  #saving: Promise<void> = NOTHING_SAVING;
  readonly #engine: DigestEngine;
  readonly #uploadId: string;
  readonly #state: DigestState;
  readonly #source: Readable;
  readonly #watcher: ChunkWatcher | undefined;

  constructor(engine: DigestEngine, uploadId: string, state: DigestState, source: Readable, watcher: ChunkWatcher | undefined) {
    super();
    this.#engine = engine;
    this.#uploadId = uploadId;
    this.#state = state;
    this.#source = source;
    this.#watcher = watcher;
    // A source that fails, or closes before its end, fails the tap: piping does not pass that on,
    // and a source that died while the state above was being prepared (a client that vanished)
    // would leave the store's write waiting forever with its file open.
    source.on('error', this.#sourceEnded);
    source.on('close', this.#sourceEnded);
    if (source.closed) process.nextTick(this.#sourceEnded);
    // The store's write learns of the error from its own pipeline (it checks `errored`); without
    // this, one raised before the store attached would be an uncaught 'error' event.
    this.on('error', ignore);
    source.pipe(this);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    if (this.#cut) return callback();
    const state = this.#state;
    const step = this.#engine.step;
    try {
      if (step === null) {
        state.hash.update(chunk);
        state.bytes += chunk.length;
      } else {
        // Save the state wherever a multiple of `step` falls inside this chunk.
        let at = 0;
        while (at < chunk.length) {
          const toBoundary = step - (state.bytes % step);
          const take = Math.min(toBoundary, chunk.length - at);
          state.hash.update(chunk.subarray(at, at + take));
          state.bytes += take;
          at += take;
          if (state.bytes % step === 0) {
            this.#saving = checkpoint(this.#engine.checkpoints, this.#saving, this.#uploadId, state);
            this.#saving.catch(ignore); // reported by settle
          }
        }
      }
    } catch (error) {
      return callback(error as Error);
    }
    this.#watcher?.chunk(chunk);
    callback(null, chunk);
  }

  cut(): void {
    if (this.#cut) return;
    this.#cut = true;
    this.push(null);
  }

  // Keep the state only when it covers exactly what reached storage; otherwise rebuild later.
  async settle(newOffset: number | null): Promise<void> {
    const state = this.#state;
    if (newOffset === null || newOffset !== state.bytes) return this.#saving.catch(ignore);
    const { states, step, checkpoints } = this.#engine;
    states.set(this.#uploadId, state);
    if (step === null) return;
    // What a restart needs: the state at this offset, and at the part end below it (the
    // next PATCH deletes `<id>.part` first; a crash then leaves only the parts).
    await checkpoint(checkpoints, this.#saving, this.#uploadId, state);
    await checkpoints.pruneDigestCheckpoints(this.#uploadId, [newOffset, newOffset - (newOffset % step)]);
  }

  /** The source's 'error' (with it) or 'close' (without): one listener for both. */
  readonly #sourceEnded = (error?: Error): void => {
    const source = this.#source;
    if (this.destroyed || (error === undefined && source.readableEnded)) return;
    this.destroy(error ?? source.errored ?? Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
  };
}

export function createDigests(storage: Pick<Storage, 'digestCheckpointBytes' | 'readUpload'>, checkpoints: Checkpoints): Digests {
  const states = new Map<string, DigestState>();
  const step = storage.digestCheckpointBytes;
  const engine: DigestEngine = { states, step, checkpoints };

  async function hashFrom(hash: Sha256, bytes: Readable): Promise<void> {
    for await (const chunk of bytes) hash.update(chunk as Buffer);
  }

  async function stateAt(uploadId: string, offset: number): Promise<DigestState> {
    const state = states.get(uploadId);
    states.delete(uploadId);
    if (state && state.bytes === offset) return state;
    if (step !== null) {
      for (const saved of await checkpoints.digestCheckpoints(uploadId, offset)) {
        const rest = saved.offset === offset ? null : await storage.readUpload(uploadId, saved.offset, offset);
        if (saved.offset !== offset && !rest) continue;
        const hash = await wasmSha256(saved.state);
        if (rest) await hashFrom(hash, rest);
        return { hash, bytes: offset };
      }
    }
    const bytes = await storage.readUpload(uploadId, 0, offset);
    if (!bytes) {
      throw new AppError('conflict', 'the server can no longer verify this upload\'s checksum; start the upload again');
    }
    const hash = step === null ? new NodeSha256() : await wasmSha256();
    await hashFrom(hash, bytes);
    return { hash, bytes: offset };
  }

  return {
    async observe(uploadId, offset, source, watcher) {
      return new DigestTap(engine, uploadId, await stateAt(uploadId, offset), source, watcher);
    },

    async finish(uploadId, size) {
      const state = await stateAt(uploadId, size);
      return state.hash.hex();
    },

    discard(uploadId) {
      states.delete(uploadId);
    },
  };
}
