// The writes still running per upload, so that whoever must see an upload's stored state (the next
// request on it, its removal, a shutdown) can wait for them: a cut request's write goes on storing
// after tus has answered it and released its lock.
export class WritesInFlight {
  readonly #running = new Map<string, Promise<unknown>>();

  /**
   * Runs `work` as the upload's write in flight until it settles; returns `work` itself. Not an
   * async function: a write may stream for hours, and a suspended frame per write is kept alive
   * for as long (bench/README.md, "What a held PATCH keeps, object by object"). The entry is
   * removed by a reaction registered on `work` before the caller's, so it is gone when they resume.
   */
  track<T>(id: string, work: Promise<T>): Promise<T> {
    const forget = (): void => {
      if (this.#running.get(id) === done) this.#running.delete(id);
    };
    const done: Promise<void> = work.then(forget, forget);
    this.#running.set(id, done);
    return work;
  }

  /** Whether a write of the upload is running (idle(id) would wait). */
  busy(id: string): boolean {
    return this.#running.has(id);
  }

  /** Resolves once no write of the upload is running. */
  async idle(id: string): Promise<void> {
    for (let running = this.#running.get(id); running; running = this.#running.get(id)) await running;
  }

  /** Resolves once no write of any upload is running. */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running.values());
  }
}
