// The tus store every upload byte is written through: it hands each write's bytes to the lifecycle
// (SHA-256, type sniffing, hooks/index.ts observeWrite) on their way to the real store, and
// delegates everything else. Wrapping write is the one place that sees exactly the bytes that are
// stored, for every backend.
import type { Readable } from 'node:stream';
import { DataStore, type Upload } from '@tus/utils';
import { isTusError } from '../server/errors.ts';
import { WritesInFlight } from '../server/storage/writes-in-flight.ts';

export interface WriteObserver {
  /**
   * Wraps the bytes about to be written at `offset`. `settle` gets the offset the store reports
   * (null when the write failed) and throws a refusal found in the bytes.
   */
  observeWrite(uploadId: string, offset: number, source: Readable): Promise<{ stream: Readable; settle(newOffset: number | null): Promise<void> }>;
}

const ignore = (): void => {};

export class ObservedStore extends DataStore {
  readonly #store: DataStore;
  readonly #observer: WriteObserver;
  /**
   * The write of each upload still running. tus releases an upload's lock as soon as the request's
   * body fails (a client that cut its connection), while the store may still be storing what came
   * before the cut (S3: the parts under way and the tail as `<id>.part`) and its hash state is being
   * settled. The next request on the upload waits for that: HEAD then reports the stored offset, and
   * a PATCH never writes before, or alongside, the bytes of the one that was cut.
   */
  readonly #writing = new WritesInFlight();

  constructor(store: DataStore, observer: WriteObserver) {
    super();
    this.#store = store;
    this.#observer = observer;
    this.extensions = store.extensions;
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    // Not an async function, and no wait when no write of the upload runs (the usual case): what a
    // write's call chain keeps stays alive for as long as its body streams (bench/README.md, "What
    // a held PATCH keeps, object by object").
    if (this.#writing.busy(id)) return this.#writing.idle(id).then(() => this.write(readable, id, offset));
    return this.#writing.track(id, this.#observedWrite(readable, id, offset));
  }

  /** Resolves once no write of the upload is running (server/locker/held-through-writes.ts). */
  idle(id: string): Promise<void> {
    return this.#writing.idle(id);
  }

  /** Resolves once no write is running: a server that stops keeps what its cut requests received. */
  settled(): Promise<void> {
    return this.#writing.settled();
  }

  async #observedWrite(readable: Readable, id: string, offset: number): Promise<number> {
    const observed = await this.#observer.observeWrite(id, offset, readable);
    // A client that disconnects before the store starts reading (S3 first fetches the unfinished
    // part it prepends) errors this stream while nothing listens yet: an uncaught exception. The
    // store still sees the error: its pipeline finds the stream destroyed.
    observed.stream.on('error', ignore);
    let newOffset: number | null = null;
    let failure: unknown;
    try {
      newOffset = await this.#store.write(observed.stream, id, offset);
    } catch (error) {
      // Stores report every failure as their own write error; a refusal from upstream (tus's size
      // limiter: 413) must reach the client as what it is. `errored` is the first error the source
      // was destroyed with (read here rather than listened for: no closure per write).
      const upstreamError: unknown = readable.errored;
      failure = isTusError(upstreamError) ? upstreamError : error;
    }
    // Throws a refusal found in the first bytes (type_not_allowed), which outranks the store's error.
    await observed.settle(newOffset);
    if (failure !== undefined) throw failure;
    return newOffset!;
  }

  override hasExtension(extension: string): boolean {
    return this.#store.hasExtension(extension);
  }

  override create(upload: Upload): Promise<Upload> {
    return this.#store.create(upload);
  }

  override async remove(id: string): Promise<void> {
    await this.#writing.idle(id);
    return this.#store.remove(id);
  }

  override async getUpload(id: string): Promise<Upload> {
    await this.#writing.idle(id);
    return this.#store.getUpload(id);
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await this.#writing.idle(id);
    return this.#store.declareUploadLength(id, length);
  }

  override deleteExpired(): Promise<number> {
    return this.#store.deleteExpired();
  }

  override getExpiration(): number {
    return this.#store.getExpiration();
  }
}
