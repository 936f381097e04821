// One gate per SQLite connection. better-sqlite3 is synchronous with one connection, so a
// transaction that awaits between its statements (the repository's `atomically`) would take in any
// statement another request runs on the connection meanwhile, and lose it on rollback. While a
// transaction is open, statements outside it wait until it ends; the transaction's own go through.
// Every module that runs statements on the server's connection outside a transaction passes here:
// the repository (sqlite-repository.ts) and tus's upload info (tus-info-repo.ts).
import { currentScope, withScope } from '../async-scope.ts';
import { OUTER_CALL_IN_TRANSACTION } from './contract.ts';
import type { Db } from './open.ts';

export class SqliteGate {
  #open: Promise<void> | undefined;

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
      // Marked in the body's scope (and what it awaits): a call outside it from there would wait for itself.
      return await withScope({ transactions: [...(currentScope()?.transactions ?? []), transaction] }, body);
    } finally {
      this.#open = undefined;
      done();
    }
  }

  /** Runs `fn` outside the transaction's context: what it starts may go through the gate. */
  exit<T>(fn: () => T): T {
    const within = currentScope()?.transactions;
    if (!this.#open || !within?.includes(this.#open)) return fn();
    const open = this.#open;
    return withScope({ transactions: within.filter((t) => t !== open) }, fn);
  }

  #refuseFromWithin(): void {
    if (this.#open && currentScope()?.transactions?.includes(this.#open)) throw new Error(OUTER_CALL_IN_TRANSACTION);
  }
}

const gates = new WeakMap<Db, SqliteGate>();

/** The gate of `db`: one per connection, whoever asks. */
export function gateOf(db: Db): SqliteGate {
  let gate = gates.get(db);
  if (!gate) gates.set(db, (gate = new SqliteGate()));
  return gate;
}
