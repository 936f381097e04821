// How a finished file reaches the virus scan: the worker (worker.ts) implements the queue.
import type { Repository } from '../db/contract.ts';

/**
 * When enabled, a finished file is recorded as 'pending' and enqueue() is called on the
 * transaction `tx` that makes it ready, so the job exists if and only if the file does.
 */
export interface ScanQueue {
  readonly enabled: boolean;
  enqueue(tx: Repository, key: string): Promise<void>;
}

export const noScans: ScanQueue = { enabled: false, async enqueue() {} };
