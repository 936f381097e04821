// The writes still running per upload, so that whoever must see an upload's stored state (the next
// request on it, its removal, a shutdown) can wait for them: a cut request's write goes on storing
// after tus has answered it and released its lock.
export class WritesInFlight {
  readonly #running = new Map<string, Promise<unknown>>();

  /** Runs `work` as the upload's write in flight until it settles; its result or error passes through. */
  async track<T>(id: string, work: Promise<T>): Promise<T> {
    const done = work.catch(() => {});
    this.#running.set(id, done);
    try {
      return await work;
    } finally {
      if (this.#running.get(id) === done) this.#running.delete(id);
    }
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
