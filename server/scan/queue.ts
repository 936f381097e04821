// How a finished file reaches the virus scan: the worker (worker.ts) implements the queue.

/**
 * When enabled, a finished file is recorded as 'pending' and enqueue() is called inside the
 * transaction that makes it ready.
 */
export interface ScanQueue {
  readonly enabled: boolean;
  enqueue(key: string): void;
}

export const noScans: ScanQueue = { enabled: false, enqueue() {} };
