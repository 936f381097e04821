// A pump runs one pass over a queue on demand, never two at once. A wake-up while a pass runs asks
// for exactly one more pass after it, however many came meanwhile: a burst of wake-ups (an enqueue
// per finished file, an emit per event) costs at most one extra look at the queue, and work added
// during a pass is never missed. The scan worker and the webhook dispatcher are each driven by one.
//
// A pass that throws is handed to `onError` (which logs it and may wake the pump later); the pump
// goes on serving wake-ups. One timer at a time stands for "wake up later": setting it again
// replaces it, a pass starting clears it, and it never holds the process open.

export interface Pump {
  /** Runs a pass now and from then on whenever woken, until stopped (a new pump is stopped). */
  start(): void;
  /** Runs a pass now, or once more after the pass under way. Nothing while stopped. */
  wake(): void;
  /** Wakes in `ms`, in place of the wake-up set for later before. */
  wakeIn(ms: number): void;
  /** No pass starts from now on; resolves once the pass under way has ended. */
  stop(): Promise<void>;
  /** Between stop() (or creation) and start(): passes in flight use it to give up early. */
  readonly stopped: boolean;
}

export function createPump(pass: () => Promise<void>, onError: (error: unknown) => void): Pump {
  let stopped = true;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  async function runOnce(): Promise<void> {
    try {
      await pass();
    } catch (error) {
      onError(error);
    }
  }

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    running = runOnce().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        wake();
      }
    });
  }

  return {
    start() {
      stopped = false;
      wake();
    },
    wake,
    wakeIn(ms) {
      if (stopped) return;
      clearTimeout(timer);
      timer = setTimeout(wake, Math.max(0, ms));
      timer.unref();
    },
    async stop() {
      stopped = true;
      again = false;
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
    get stopped() {
      return stopped;
    },
  };
}
