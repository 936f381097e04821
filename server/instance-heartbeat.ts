// Each running instance beats in the database (repository `instances`), so the others know it is
// alive: a restarting instance's repair leaves a live instance's work in flight to it
// (hooks/repair.ts). On SQLite the registry is in memory and the instance is alone.
import type { Logger } from 'pino';
import type { InstanceRegistry } from './db/contract.ts';

/** How often an instance says it is alive. */
export const INSTANCE_HEARTBEAT_MS = 5_000;
/**
 * An instance not seen for this long is taken as gone: six missed beats, far above a GC pause or a
 * slow database, and above the upload locks' lease (10 s), so its locks have ended too.
 */
export const INSTANCE_LAPSE_MS = 30_000;

export interface InstanceHeartbeat {
  /** The other instances seen within the lapse. */
  liveOthers(): Promise<Set<string>>;
  /** Stops beating and leaves the registry (a clean shutdown). */
  stop(): Promise<void>;
}

export async function startInstanceHeartbeat(registry: InstanceRegistry, id: string, now: () => number, log: Logger): Promise<InstanceHeartbeat> {
  await registry.beat(id, now());
  const timer = setInterval(() => {
    registry.beat(id, now()).catch((err: unknown) => log.warn({ err, instance_id: id }, 'could not record this instance\'s heartbeat'));
  }, INSTANCE_HEARTBEAT_MS);
  timer.unref();
  return {
    liveOthers: () => registry.seenSince(id, now() - INSTANCE_LAPSE_MS),
    async stop() {
      clearInterval(timer);
      await registry.leave(id).catch((err: unknown) => log.warn({ err, instance_id: id }, 'could not remove this instance from the registry; its heartbeat will lapse'));
    },
  };
}
