// One gate per SQLite connection. better-sqlite3 is synchronous with one connection, so a
// transaction that awaits between its statements (the repository's `atomically`) would take in any
// statement another request runs on the connection meanwhile, and lose it on rollback. While a
// transaction is open, statements outside it wait until it ends; the transaction's own go through.
// Every module that runs statements on the server's connection outside a transaction passes here:
// the repository (sqlite-repository.ts) and tus's upload info (tus-info-repo.ts).
//
// A call on the outer repository from inside a transaction would wait for that transaction, which
// waits for it: a hang. Telling such a call from another request's needs to know which
// asynchronous work runs inside which transaction, an AsyncLocalStorage; and on Node 20 an
// AsyncLocalStorage, once entered, costs every promise of the process a hook call and a property,
// whatever it holds (a held PATCH kept 3 KiB more: bench/README.md, "A development check instead of
// the request scope"). So it is a development check (STREAMLINE_DEV_CHECKS, on in every test
// server): such a call then throws OUTER_CALL_IN_TRANSACTION at once.
import { AsyncLocalStorage } from 'node:async_hooks';
import { OUTER_CALL_IN_TRANSACTION } from './contract.ts';
import type { Db } from './open.ts';

/** The open transactions the current asynchronous work runs inside (one per gate), with the check on. */
let inside: AsyncLocalStorage<readonly Promise<void>[]> | undefined;

export class SqliteGate {
  #open: Promise<void> | undefined;

  constructor(private readonly scope: AsyncLocalStorage<readonly Promise<void>[]> | undefined) {}

  /** Runs `fn` once no transaction is open. */
  async outside<T>(fn: () => T): Promise<T> {
    this.#refuseFromWithin();
    while (this.#open) await this.#open;
    return fn();
  }

  /** Runs a transaction's `body` with the gate closed to everything else. */
  async closed<T>(body: () => Promise<T>): Promise<T> {
    this.#refuseFromWithin();
    // Waited for here, not in a helper: between the last check and the gate closing no other
    // waiter may run, or two transactions begun in the same tick would both find it open.
    while (this.#open) await this.#open;
    let done!: () => void;
    const transaction = (this.#open = new Promise((resolve) => (done = resolve)));
    try {
      const { scope } = this;
      // Marked in the body's scope (and what it awaits): a call outside it from there would wait for itself.
      return await (scope ? scope.run([...(scope.getStore() ?? []), transaction], body) : body());
    } finally {
      this.#open = undefined;
      done();
    }
  }

  /** Runs `fn` outside the transaction's context: what it starts may go through the gate. */
  exit<T>(fn: () => T): T {
    const within = this.scope?.getStore();
    const open = this.#open;
    if (!open || !within?.includes(open)) return fn();
    return this.scope!.run(within.filter((t) => t !== open), fn);
  }

  #refuseFromWithin(): void {
    if (this.#open && this.scope?.getStore()?.includes(this.#open)) throw new Error(OUTER_CALL_IN_TRANSACTION);
  }
}

const gates = new WeakMap<Db, SqliteGate>();

/** The gate of `db`: one per connection, whoever asks. */
export function gateOf(db: Db): SqliteGate {
  let gate = gates.get(db);
  if (!gate) gates.set(db, (gate = new SqliteGate(undefined)));
  return gate;
}

/** Makes the gate of a connection just opened a checked one (the development check above). */
export function checkTransactions(db: Db): void {
  if (gates.has(db)) throw new Error('checkTransactions: call it before anything uses the connection');
  gates.set(db, new SqliteGate((inside ??= new AsyncLocalStorage())));
}
