// Loading the server (its modules, compiled code, validation schemas) allocates enough that V8
// grows its young generation to the maximum while it happens, and keeps those pages resident
// afterwards although almost nothing in them is still alive: ~12 MiB of RSS an idle server, and
// one under upload load, carries for nothing (bench/README.md, "Peak RSS in parallel: the young generation after start-up").
// A memory-reducing collection once start-up is over hands them back. Node offers that collection
// only through the inspector protocol (HeapProfiler.collectGarbage); an in-process session opens
// no port and nothing outside the process can reach it.
import { Session } from 'node:inspector';

/** One memory-reducing garbage collection; resolves when it is done (at once without an inspector). */
export function releaseStartupMemory(): Promise<void> {
  let session: Session;
  try {
    session = new Session();
    session.connect();
  } catch {
    return Promise.resolve(); // a Node built without the inspector: only the memory stays
  }
  // Disconnected once the callback has returned: disconnecting inside it never returns.
  return new Promise<void>((resolve) => session.post('HeapProfiler.collectGarbage', () => resolve())).then(() => session.disconnect());
}
