// What a request's asynchronous work carries with it, in one AsyncLocalStorage for the process:
// the request id its log lines are tagged with (server/logging.ts) and the SQLite transactions it
// is inside (server/db/sqlite-gate.ts).
//
// One, because on Node 20 every AsyncLocalStorage that has been entered adds a property to every
// promise created from then on, whether or not it holds anything: with two, a PATCH held open
// kept ~1.3 KiB more per connection (bench/README.md, "Memory per held PATCH").
import { AsyncLocalStorage } from 'node:async_hooks';

export interface Scope {
  readonly requestId?: string;
  /** The open transactions this work runs inside, innermost last (one per SQLite gate). */
  readonly transactions?: readonly Promise<void>[];
}

const storage = new AsyncLocalStorage<Scope>();

export function currentScope(): Scope | undefined {
  return storage.getStore();
}

/** Runs `fn` with the current scope changed by `change`; what `fn` starts keeps it. */
export function withScope<T>(change: Scope, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...change }, fn);
}
