// Upload requests in flight, counted per user and per upload (this process only).
//  - Per user: a single token cannot hold more than UPLOAD_MAX_REQUESTS_PER_USER upload requests
//    open at once (each holds a socket, a file descriptor and buffers, and a stalled one holds them
//    for up to UPLOAD_IDLE_TIMEOUT_SECONDS); the next answers 429 too_many_upload_requests.
//  - Per upload: expiry (hooks/expiry.ts) skips an upload that is receiving bytes right now,
//    however long ago its last request began.
import { AppError } from './errors.ts';

export class UploadRequests {
  readonly #perUser = new Map<string, number>();
  readonly #perUpload = new Map<string, number>();

  constructor(readonly maxPerUser: number) {}

  /**
   * Admits one request of `userId` (writing to `uploadId`, when known) or throws
   * too_many_upload_requests. Release the returned slot when the request has ended.
   */
  enter(userId: string, uploadId?: string): RequestSlot {
    const held = this.#perUser.get(userId) ?? 0;
    if (held >= this.maxPerUser) {
      throw new AppError('too_many_upload_requests', `at most ${this.maxPerUser} upload requests per user may be in flight at once`);
    }
    this.#perUser.set(userId, held + 1);
    if (uploadId !== undefined) add(this.#perUpload, uploadId, 1);
    return new RequestSlot(this, userId, uploadId);
  }

  /** Gives back what enter() took; called once per request (RequestSlot). */
  leave(userId: string, uploadId: string | undefined): void {
    add(this.#perUser, userId, -1);
    if (uploadId !== undefined) add(this.#perUpload, uploadId, -1);
  }

  /** Whether a request is writing to this upload now. */
  isReceiving(uploadId: string): boolean {
    return this.#perUpload.has(uploadId);
  }

  inFlight(userId: string): number {
    return this.#perUser.get(userId) ?? 0;
  }
}

function add(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}

/**
 * One admitted request's hold; release() works once. An object rather than a closure: a PATCH
 * holds it for as long as its body streams.
 */
export class RequestSlot {
  #released = false;
  constructor(
    private readonly requests: UploadRequests,
    private readonly userId: string,
    private readonly uploadId: string | undefined,
  ) {}

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.requests.leave(this.userId, this.uploadId);
  }
}
