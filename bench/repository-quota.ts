// Quota decisions (reserveUpload) per second through the repository contract: SQLite (the
// baseline, one instance) beside PostgreSQL from two pools as two instances, for creations spread
// over many users and for creations of one user (all queueing on that user's totals row), in the
// same run. PostgreSQL is Debian's, started here on a free port (test/support/postgres.ts).
//   node --import tsx bench/repository-quota.ts --count 2000 --concurrency 16 --repeat 3
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Repository, UploadRow } from '../server/db/contract.ts';
import { openDb } from '../server/db/open.ts';
import { createPgRepository } from '../server/db/pg/pg-repository.ts';
import { createPgPool } from '../server/db/pg/pool.ts';
import { migratePostgres } from '../server/db/postgres-migrations.ts';
import { createSqliteRepository } from '../server/db/sqlite-repository.ts';
import { createDatabase, startPostgres } from '../test/support/postgres.ts';
import { describeMachine, loadAverage } from './lib/machine.ts';

const { values } = parseArgs({ options: {
  count: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '16' },
  repeat: { type: 'string', default: '3' },
} });
const COUNT = Number(values.count);
const CONCURRENCY = Number(values.concurrency);
const REPEAT = Number(values.repeat);
const log = pino({ level: 'silent' });

function row(userId: string): UploadRow {
  return {
    id: randomBytes(16).toString('hex'), user_id: userId, length: 1024, reserved_bytes: 1024, filename: 'a.bin', folder: '',
    content_type: 'application/octet-stream', sha256_declared: null, created_at: 1, touched_at: 1, head: null, type_checked: 0, detected_type: null,
  };
}

/** COUNT reservations, CONCURRENCY at a time, alternating between the repositories; reservations per second. */
async function run(repos: Repository[], user: (i: number) => string): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < COUNT; i = next++) {
      const outcome = await repos[i % repos.length]!.reserveUpload(row(user(i)), Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      if (outcome !== 'reserved') throw new Error(`reservation ${i}: ${outcome}`);
    }
  }));
  return COUNT / (Number(process.hrtime.bigint() - start) / 1e9);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const machine = describeMachine();
  console.log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}`);
  const server = await startPostgres();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sl-bench-repo-'));
  const db = openDb(dir);
  const sqlite = createSqliteRepository(db, { webhookUrls: [], now: Date.now });
  const url = await createDatabase(server.url, 'bench');
  const pools = [1, 2].map((n) => createPgPool(url, log, { max: 4, applicationName: `bench_${n}` }));
  await migratePostgres(pools[0]!);
  const postgres = pools.map((pool) => createPgRepository({ pool, webhookUrls: [], now: Date.now }));
  try {
    const results: Array<[string, number[]]> = [];
    let round = 0;
    for (const [name, repos] of [['SQLite, one instance', [sqlite]], ['PostgreSQL, two instances', postgres]] as const) {
      for (const [spread, user] of [['many users', (i: number) => `user_${round}_${i % 500}`], ['one user', () => `single_${round}`]] as const) {
        const rates: number[] = [];
        for (let r = 0; r < REPEAT; r++) {
          round++;
          rates.push(await run([...repos], user));
        }
        results.push([`${name}, ${spread}`, rates]);
      }
    }
    const baseline = median(results[0]![1]);
    console.log(`\n${COUNT} reservations, ${CONCURRENCY} in flight, median of ${REPEAT} (load average ${loadAverage()})`);
    console.log('| setup | reservations/s | against SQLite, many users |\n|---|---|---|');
    for (const [label, rates] of results) console.log(`| ${label} | ${median(rates).toFixed(0)} | ${(median(rates) / baseline).toFixed(2)}x |`);
  } finally {
    await Promise.all(pools.map((pool) => pool.end()));
    db.close();
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
}

await main();
