// A user's usage three ways, which must agree: the sums over the rows, the counters (user_usage),
// and GET /v1/usage. Read with SQL on whichever database the server runs (test/helpers/records.ts).
import assert from 'node:assert/strict';
import { recordCount, recordRows } from '../helpers/records.ts';
import type { TestServer } from '../helpers/server.ts';

export type Totals = [used: number, reserved: number, unfinished: number];

/** The sums the counters must equal, computed from the rows themselves. */
async function summed(server: TestServer, userId: string): Promise<Totals> {
  const used = await recordCount(server, 'SELECT coalesce(sum(size), 0) AS n FROM files WHERE user_id = ?', userId);
  const [row] = await recordRows<{ reserved: number; unfinished: number }>(server,
    'SELECT coalesce(sum(reserved_bytes), 0) AS reserved, count(*) AS unfinished FROM uploads WHERE user_id = ?', userId);
  return [used, row!.reserved, row!.unfinished];
}

async function counted(server: TestServer, userId: string): Promise<Totals> {
  const [row] = await recordRows<{ used_bytes: number; reserved_bytes: number; uploads: number }>(server,
    'SELECT used_bytes, reserved_bytes, uploads FROM user_usage WHERE user_id = ?', userId);
  return [row?.used_bytes ?? 0, row?.reserved_bytes ?? 0, row?.uploads ?? 0];
}

export async function expectTotals(server: TestServer, auth: Record<string, string>, userId: string, expected: Totals, step: string): Promise<void> {
  assert.deepEqual(await summed(server, userId), expected, `${step}: the rows`);
  assert.deepEqual(await counted(server, userId), expected, `${step}: the counters`);
  const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
  assert.deepEqual([usage.used_bytes, usage.reserved_bytes], expected.slice(0, 2), `${step}: /v1/usage`);
}

