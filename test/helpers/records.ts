// Reading and forging a test server's records with SQL, on whichever database it runs: its SQLite
// file, or its PostgreSQL database (TEST_DATABASE=postgres, test/helpers/database.ts), whose tables
// and columns are the SQLite ones' twins (test/server/db/postgres-schema.test.ts). For what the
// repository (server/db/contract.ts) and the API do not answer: counts of rows the server keeps to
// itself, and the states a crash leaves. Write the query in the SQL both share, with `?`
// placeholders; numbers come back as numbers.
// `of` is a running in-process server, or the DATA_DIR of a stopped or spawned one.
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { databaseEnvFor } from './database.ts';
import type { TestServer } from './server.ts';

type Row = Record<string, unknown>;
type RecordsOf = Pick<TestServer, 'services'> | string;

// bigint (count, sum) and numeric come back from PostgreSQL as strings; the values here are small.
const NUMERIC_TYPES = new Set<number>([pg.types.builtins.INT8, pg.types.builtins.NUMERIC]);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    NUMERIC_TYPES.has(oid) ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Runs one statement: the rows it answers (none for a write) and how many rows it changed. */
export async function recordQuery<T extends Row = Row>(of: RecordsOf, sql: string, ...params: unknown[]): Promise<{ rows: T[]; changes: number }> {
  const url = typeof of === 'string' ? (await databaseEnvFor(of)).DATABASE_URL : of.services.config.databaseUrl;
  if (url === undefined) {
    const db = typeof of === 'string' ? new Database(path.join(of, 'stream-line.sqlite')) : of.services.db;
    try {
      const statement = db.prepare(sql);
      return statement.reader ? { rows: statement.all(...params) as T[], changes: 0 } : { rows: [], changes: statement.run(...params).changes };
    } finally {
      if (typeof of === 'string') db.close();
    }
  }
  let n = 0;
  const client = new pg.Client({ connectionString: url, types });
  await client.connect();
  try {
    const result = await client.query(sql.replace(/\?/g, () => `$${++n}`), params);
    return { rows: result.rows as T[], changes: result.command === 'SELECT' ? 0 : (result.rowCount ?? 0) };
  } finally {
    await client.end();
  }
}

export async function recordRows<T extends Row = Row>(of: RecordsOf, sql: string, ...params: unknown[]): Promise<T[]> {
  return (await recordQuery<T>(of, sql, ...params)).rows;
}

/** The one number a query such as `SELECT count(*) AS n FROM …` answers. */
export async function recordCount(of: RecordsOf, sql: string, ...params: unknown[]): Promise<number> {
  const [row] = await recordRows(of, sql, ...params);
  return Number(Object.values(row ?? {})[0] ?? 0);
}
