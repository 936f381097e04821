// Counts work in flight (requests being handled, responses being sent) so a shutdown can wait for
// it, within a bound, before closing the database under it.

export interface Drain {
  readonly active: number;
  /** True once draining started: responses ask clients to close their connections. */
  readonly draining: boolean;
  /** Marks one unit of work; call the returned function once when it ends. */
  begin(): () => void;
  /**
   * begin() without the function: the caller calls end() exactly once for each enter() (an object
   * that tracks its own work keeps no closure per unit).
   */
  enter(): void;
  end(): void;
  /** Resolves true when nothing is in flight, false when `timeoutMs` passed first. */
  idle(timeoutMs: number): Promise<boolean>;
  startDraining(): void;
}

export function createDrain(): Drain {
  let active = 0;
  let draining = false;
  let waiters: Array<() => void> = [];
  const end = (): void => {
    active--;
    if (active === 0) {
      const resolve = waiters;
      waiters = [];
      for (const w of resolve) w();
    }
  };
  return {
    get active() {
      return active;
    },
    get draining() {
      return draining;
    },
    begin() {
      active++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        end();
      };
    },
    enter() {
      active++;
    },
    end,
    idle(timeoutMs) {
      if (active === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done);
          resolve(false);
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve(true);
        };
        waiters.push(done);
      });
    },
    startDraining() {
      draining = true;
    },
  };
}
