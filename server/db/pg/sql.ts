// How the PostgreSQL repository talks to the database: a query runs on the pool (one round trip
// on a borrowed connection) or, inside a transaction, on that transaction's connection. Nested
// transactions become savepoints, as better-sqlite3 nests them.
import pg from 'pg';
import { reachingDatabase } from '../../database-unreachable.ts';

/** bigint (int8) and numeric (sums) come back as numbers: times and byte counts stay below 2^53. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

export interface Sql {
  rows<R extends object>(text: string, values?: unknown[]): Promise<R[]>;
  one<R extends object>(text: string, values?: unknown[]): Promise<R | undefined>;
  /** Rows changed. */
  run(text: string, values?: unknown[]): Promise<number>;
  /** Runs `fn` in a transaction (a savepoint when already in one); `afterCommit` callbacks run once it commits. */
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  afterCommit(fn: () => void): void;
}

export function createSql(pool: pg.Pool): Sql {
  return bind(pool, undefined);
}

function bind(on: pg.Pool | pg.PoolClient, committed: Array<() => void> | undefined, depth = 0): Sql {
  const query = (text: string, values: unknown[] = []) => reachingDatabase(on.query({ text, values, types: TYPES }));
  const sql: Sql = {
    rows: async (text, values) => (await query(text, values)).rows,
    one: async (text, values) => (await query(text, values)).rows[0],
    run: async (text, values) => (await query(text, values)).rowCount ?? 0,
    afterCommit(fn) {
      if (committed) committed.push(fn);
      else setImmediate(fn);
    },
    async tx(fn) {
      if (committed) {
        const name = `sp_${depth + 1}`;
        await query(`SAVEPOINT ${name}`);
        try {
          const result = await fn(bind(on, committed, depth + 1));
          await query(`RELEASE SAVEPOINT ${name}`);
          return result;
        } catch (error) {
          await query(`ROLLBACK TO SAVEPOINT ${name}`);
          throw error;
        }
      }
      const client = await reachingDatabase((on as pg.Pool).connect());
      const callbacks: Array<() => void> = [];
      let broken = false;
      try {
        await reachingDatabase(client.query('BEGIN'));
        const result = await fn(bind(client, callbacks));
        await reachingDatabase(client.query('COMMIT'));
        for (const callback of callbacks) setImmediate(callback);
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw error;
      } finally {
        // A connection that could not roll back is closed rather than handed to the next query.
        client.release(broken);
      }
    },
  };
  return sql;
}
