// One gate per SQLite connection. better-sqlite3 is synchronous with one connection, so a
// transaction that awaits between its statements (the repository's `atomically`) would take in any
// statement another request runs on the connection meanwhile, and lose it on rollback. While a
// transaction is open, statements outside it wait until it ends; the transaction's own go through.
// Every module that runs statements on the server's connection outside a transaction passes here:
// the repository (sqlite-repository.ts) and tus's upload info (tus-info-repo.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import { OUTER_CALL_IN_TRANSACTION } from './contract.ts';
import type { Db } from './open.ts';

export class SqliteGate {
  /** Set in the transaction's body (and what it awaits): a call outside it from there would wait for itself. */
  readonly #within = new AsyncLocalStorage<Promise<void>>();
  #open: Promise<void> | undefined;

  /** Runs `fn` once no transaction is open. */
  async outside<T>(fn: () => T): Promise<T> {
    do await this.#wait();
    while (this.#open); // a transaction may have begun while this resumed (see closed)
    return fn();
  }

  /** Runs a transaction's `body` with the gate closed to everything else. */
  async closed<T>(body: () => Promise<T>): Promise<T> {
    // Waiters resume one microtask after the gate opens: one that resumed first may have closed it again.
    do await this.#wait();
    while (this.#open);
    let done!: () => void;
    const transaction = (this.#open = new Promise((resolve) => (done = resolve)));
    try {
      return await this.#within.run(transaction, body);
    } finally {
      this.#open = undefined;
      done();
    }
  }

  /** Runs `fn` outside the transaction's context: what it starts may go through the gate. */
  exit<T>(fn: () => T): T {
    return this.#within.exit(fn);
  }

  async #wait(): Promise<void> {
    if (this.#open && this.#within.getStore() === this.#open) throw new Error(OUTER_CALL_IN_TRANSACTION);
    while (this.#open) await this.#open;
  }
}

const gates = new WeakMap<Db, SqliteGate>();

/** The gate of `db`: one per connection, whoever asks. */
export function gateOf(db: Db): SqliteGate {
  let gate = gates.get(db);
  if (!gate) gates.set(db, (gate = new SqliteGate()));
  return gate;
}
