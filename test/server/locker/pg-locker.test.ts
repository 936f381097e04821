// The PostgreSQL upload locker as two server instances use it: two lockers on separate pools (and a
// third in a child process that is killed), against a real PostgreSQL started by the test.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERRORS } from '@tus/server';
import type { Lock } from '@tus/utils';
import pg from 'pg';
import { lockUpload } from '../../../hooks/upload-lock.ts';
import { migratePostgres, POSTGRES_MIGRATIONS } from '../../../server/db/postgres-migrations.ts';
import { until } from '../../helpers/until.ts';
import { createDatabase, POSTGRES_MISSING, startPostgres, type PostgresServer } from '../../support/postgres.ts';
import { openInstance, POOL_MAX, TEST_LOCKER, type PgInstance } from './pg-instance.ts';

const isLockTimeout = (error: unknown) => error === ERRORS.ERR_LOCK_TIMEOUT;
const forever = () => new AbortController().signal;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe('PostgreSQL locker across instances', { skip: POSTGRES_MISSING, timeout: 300_000 }, () => {
  let server: PostgresServer;
  let url: string;
  let admin: pg.Client;
  let a: PgInstance;
  let b: PgInstance;
  const extra: PgInstance[] = [];
  const holderOf = async (uploadId: string) =>
    (await admin.query<{ instance_id: string }>('SELECT instance_id FROM upload_locks WHERE upload_id = $1 AND expires_at > now()', [uploadId]))
      .rows[0]?.instance_id;

  before(async () => {
    server = await startPostgres();
    url = await createDatabase(server.url, 'locks');
    admin = new pg.Client({ connectionString: url, application_name: 'test-admin' });
    admin.on('error', () => {}); // cut by the outage test
    await admin.connect();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await migratePostgres(pool);
    await pool.end();
    a = await openInstance(url, 'instance_a');
    b = await openInstance(url, 'instance_b');
  });
  after(async () => {
    await Promise.all([a, b, ...extra].map((i) => i?.close()));
    await admin?.end();
    await server?.stop();
  });

  test('migrations started by several instances at once leave one schema', async () => {
    const fresh = await createDatabase(server.url, 'migrate_race');
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: fresh, max: 1 }));
    try {
      const versions = await Promise.all(pools.map((pool) => migratePostgres(pool)));
      assert.deepEqual(versions, pools.map(() => POSTGRES_MIGRATIONS.length));
      const { rows } = await pools[0]!.query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
      assert.equal(Number(rows[0]!.n), POSTGRES_MIGRATIONS.length, 'each migration ran once');
      assert.equal(await migratePostgres(pools[1]!), POSTGRES_MIGRATIONS.length, 'a restart finds nothing to do');
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  test('one request at a time holds an upload, whichever instance each comes from', async () => {
    const id = randomUUID();
    let inside = 0;
    let most = 0;
    await Promise.all(Array.from({ length: 24 }, async (_, i) => {
      const lock = (i % 2 ? a : b).locker.newLock(id);
      await lock.lock(forever(), () => {}); // each lets go on its own, soon
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 5)); // hold across at least one event-loop turn
      inside--;
      await lock.unlock();
    }));
    assert.equal(most, 1);
  });

  test('a live holder keeps its lock past the lease (heartbeat), so the other instance times out', async () => {
    const id = randomUUID();
    let asked = 0;
    const holder = a.locker.newLock(id);
    await holder.lock(forever(), () => void asked++); // refuses to release
    // Twice the lease: without renewal the lock would have passed to b.
    await assert.rejects(b.locker.newLock(id).lock(AbortSignal.timeout(2 * TEST_LOCKER.leaseMs), () => {}), isLockTimeout);
    assert.ok(asked >= 1, 'a was asked to release, on every poll');
    assert.equal(await holderOf(id), a.locker.instanceId);
    await holder.unlock();
  });

  test('the newest request wins: the holder on the other instance is asked to release, and the lock changes hands', async (t) => {
    // A long lease, so that a hand-over shorter than it cannot be a lease running out.
    const long = { leaseMs: 30_000, heartbeatMs: 5_000 };
    const pair = [await openInstance(url, 'long_a', long), await openInstance(url, 'long_b', long)] as const;
    extra.push(...pair);
    const handOvers: number[] = [];
    for (let round = 0; round < 20; round++) {
      const [from, to] = round % 2 ? [pair[0], pair[1]] : [pair[1], pair[0]];
      const id = randomUUID();
      let holderAsked = 0;
      let newerAsked = 0;
      const holder = from.locker.newLock(id);
      await holder.lock(forever(), async () => {
        holderAsked++;
        await holder.unlock(); // what tus's request does once cancelled: its handler lets go
      });
      const newer = to.locker.newLock(id);
      const started = performance.now();
      await newer.lock(forever(), () => void newerAsked++);
      handOvers.push(performance.now() - started);
      assert.equal(holderAsked, 1, 'the previous holder was asked once');
      assert.equal(newerAsked, 0);
      assert.equal(await holderOf(id), to.locker.instanceId);
      await newer.unlock();
    }
    t.diagnostic(`hand-over between instances: median ${median(handOvers).toFixed(1)} ms, max ${Math.max(...handOvers).toFixed(1)} ms over ${handOvers.length}`);
    assert.ok(Math.max(...handOvers) < long.leaseMs, 'every hand-over came from the release request, not a lease running out');
  });

  test('the lock of an instance that dies (SIGKILL, no unlock) frees itself after the lease', async (t) => {
    const id = randomUUID();
    const script = fileURLToPath(new URL('./lock-holder-process.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, url, id], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      await until('the child to hold the lock', () => output.includes('locked') || child.exitCode !== null);
      assert.equal(child.exitCode, null, 'the holder process is running');
      const doomed = await holderOf(id);
      assert.ok(doomed && doomed !== a.locker.instanceId && doomed !== b.locker.instanceId);
      await assert.rejects(b.locker.newLock(id).lock(AbortSignal.timeout(3 * TEST_LOCKER.pollMs), () => {}), isLockTimeout);
    } finally {
      child.kill('SIGKILL');
    }
    await once(child, 'exit');
    const killedAt = performance.now();
    const lock = b.locker.newLock(id);
    await lock.lock(forever(), () => {});
    const waited = performance.now() - killedAt;
    t.diagnostic(`lock of a killed instance taken over after ${waited.toFixed(0)} ms (lease ${TEST_LOCKER.leaseMs} ms, poll ${TEST_LOCKER.pollMs} ms)`);
    assert.equal(await holderOf(id), b.locker.instanceId);
    // Generous: one lease plus one poll, ten times over, for a machine under load.
    assert.ok(waited < 10 * (TEST_LOCKER.leaseMs + TEST_LOCKER.pollMs));
    await lock.unlock();
  });

  test('1,000 concurrent locks on distinct uploads use at most pool + 1 connections per instance', async (t) => {
    const connections = async () => {
      const { rows } = await admin.query<{ application_name: string; n: string }>(
        `SELECT application_name, count(*) AS n FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1`);
      return new Map(rows.map((r) => [r.application_name, Number(r.n)]));
    };
    const peak = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const [name, n] of await connections()) peak.set(name, Math.max(peak.get(name) ?? 0, n));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    const started = performance.now();
    const locks = await Promise.all(ids.map(async (id, i) => {
      const lock = (i % 2 ? a : b).locker.newLock(id);
      await lock.lock(forever(), () => {});
      return lock;
    }));
    const tookMs = performance.now() - started;
    const { rows: [taken] } = await admin.query<{ n: string; latest: Date }>(
      'SELECT count(*) AS n, max(expires_at) AS latest FROM upload_locks WHERE upload_id = ANY($1)', [ids]);
    assert.equal(Number(taken!.n), 1000);
    // Every lease renewed in the heartbeat's batches, without one connection per lock.
    await until('a heartbeat to renew all 1,000 leases', async () => {
      const { rows } = await admin.query<{ renewed: boolean }>(
        'SELECT min(expires_at) > $2 AS renewed FROM upload_locks WHERE upload_id = ANY($1)', [ids, taken!.latest]);
      return rows[0]!.renewed;
    });
    await Promise.all(locks.map((lock) => lock.unlock()));
    sampling = false;
    await sampler;
    const { rows: [left] } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM upload_locks WHERE upload_id = ANY($1)', [ids]);
    assert.equal(Number(left!.n), 0);
    t.diagnostic(`1,000 locks taken in ${tookMs.toFixed(0)} ms; peak connections: instance_a ${peak.get('instance_a')}, instance_b ${peak.get('instance_b')} (pool ${POOL_MAX} + 1 listener each)`);
    for (const name of ['instance_a', 'instance_b']) {
      assert.ok((peak.get(name) ?? 0) <= POOL_MAX + 1, `${name} used ${peak.get(name)} connections`);
    }
  });

  test('a holder whose lease ran out and was taken is told to stop, and its late unlock leaves the new lock alone', async () => {
    // As if a's heartbeats had not reached the database for a whole lease.
    const expire = (id: string) => admin.query(`UPDATE upload_locks SET expires_at = now() - interval '1 second' WHERE upload_id = $1`, [id]);
    const [late, told] = [randomUUID(), randomUUID()];
    const asked = new Map<string, number>();
    const firsts = new Map<string, Lock>();
    const seconds = new Map<string, Lock>();
    for (const id of [late, told]) {
      const first = a.locker.newLock(id);
      await first.lock(forever(), () => void asked.set(id, (asked.get(id) ?? 0) + 1));
      await expire(id);
      const second = b.locker.newLock(id);
      await second.lock(forever(), () => {});
      firsts.set(id, first);
      seconds.set(id, second);
    }
    // Unlocked before a's heartbeat noticed: the delete must match a's token, not just the upload.
    await firsts.get(late)!.unlock();
    assert.equal(await holderOf(late), b.locker.instanceId, "a's late unlock did not free b's lock");
    await until('a to learn at its next heartbeat that it lost the other lock', () => (asked.get(told) ?? 0) >= 1);
    await firsts.get(told)!.unlock();
    await firsts.get(told)!.unlock(); // idempotent
    assert.equal(await holderOf(told), b.locker.instanceId);
    for (const id of [late, told]) {
      await seconds.get(id)!.unlock();
      await seconds.get(id)!.unlock();
      assert.equal(await holderOf(id), undefined);
    }
  });

  test('lock() honours its AbortSignal: aborted before, it takes nothing; aborted while waiting, the holder keeps the lock', async () => {
    const id = randomUUID();
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(a.locker.newLock(id).lock(aborted.signal, () => {}), isLockTimeout);
    assert.equal(await holderOf(id), undefined, 'a free upload was not taken by an aborted request');

    let asked = 0;
    const holder = a.locker.newLock(id);
    await holder.lock(forever(), () => void asked++);
    const stop = new AbortController();
    const waiting = b.locker.newLock(id).lock(stop.signal, () => {});
    await until('the waiting request to ask the holder', () => asked >= 1);
    stop.abort();
    await assert.rejects(waiting, isLockTimeout);
    assert.equal(await holderOf(id), a.locker.instanceId);
    await holder.unlock();
    const next = b.locker.newLock(id);
    await next.lock(forever(), () => {});
    await next.unlock();
  });

  test('release requests still arrive after the LISTEN connection was cut (it reconnects)', async () => {
    const id = randomUUID();
    const holder = a.locker.newLock(id);
    let asked = 0;
    await holder.lock(forever(), async () => {
      asked++;
      await holder.unlock();
    });
    const { rowCount } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'instance_a' AND query LIKE 'LISTEN %'`);
    assert.equal(rowCount, 1, "a's LISTEN connection was found and cut");
    const newer = b.locker.newLock(id);
    await newer.lock(forever(), () => {});
    assert.equal(asked >= 1, true);
    await newer.unlock();
  });

  test('close() hands back every lock the instance holds', async () => {
    const closing = await openInstance(url, 'closing');
    extra.push(closing);
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) await closing.locker.newLock(id).lock(forever(), () => {}); // never released by hand
    await closing.close();
    const { rows } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM upload_locks WHERE upload_id = ANY($1)', [ids]);
    assert.equal(Number(rows[0]!.n), 0);
  });

  test('tryLock takes a free lock and leaves a held one alone: its holder is never asked to release', async () => {
    const id = randomUUID();
    let asked = 0;
    const holder = a.locker.newLock(id);
    await holder.lock(forever(), () => void asked++);
    assert.equal(await b.locker.tryLock(id, () => {}), undefined);
    assert.equal(await a.locker.tryLock(id, () => {}), undefined, 'nor on its own instance');
    assert.equal(asked, 0);
    await holder.unlock();

    let quietAsked = 0;
    const quiet = await b.locker.tryLock(id, () => void quietAsked++);
    assert.ok(quiet);
    assert.equal(await holderOf(id), b.locker.instanceId);
    // A request still wins over it (tus semantics): the quiet holder is asked, and lets go.
    const request = a.locker.newLock(id);
    const taken = request.lock(forever(), () => {});
    await until('the quiet holder is asked to release', () => quietAsked > 0);
    await quiet.unlock();
    await taken;
    assert.equal(await holderOf(id), a.locker.instanceId);
    await request.unlock();
  });
  test('a free lock whose claim outlasts the caller\'s wait (a slow database) is kept, not handed back as a timeout', async () => {
    const id = randomUUID();
    // Another transaction inserted the upload's row (an expired lease) and has not committed: the
    // claim waits on it past the end of the caller's wait, then finds the lease expired and takes the lock.
    const blocker = new pg.Client({ connectionString: url, application_name: 'test-blocker' });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query("INSERT INTO upload_locks (upload_id, instance_id, token, expires_at) VALUES ($1, 'gone', 'gone', now() - interval '1 hour')", [id]);
      const lock = a.locker.newLock(id);
      const wait = new AbortController();
      const taking = lock.lock(wait.signal, () => {});
      await until('the claim waits on the uncommitted row', async () =>
        (await admin.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'instance_a' AND wait_event_type = 'Lock'")).rowCount! > 0);
      wait.abort(); // the caller's wait runs out while its claim is on its way
      await blocker.query('COMMIT');
      await taking; // the old code: ERR_LOCK_TIMEOUT, the lock given back
      assert.equal(await holderOf(id), a.locker.instanceId);
      await lock.unlock();
    } finally {
      await blocker.end();
    }
  });

  // Last: the outage cuts every connection of the instances above.
  test('PostgreSQL away: a request for a lock hears so; a lock released meanwhile is handed back once it returns, not when its lease ends', async () => {
    // A lease far longer than the other instance waits: only the hand-back lets it in.
    const holder = await openInstance(url, 'outage_holder', { leaseMs: 300_000, acquireTimeoutMs: 30_000 });
    const asker = await openInstance(url, 'outage_asker', { acquireTimeoutMs: 30_000 });
    extra.push(holder, asker);
    const id = randomUUID();
    const lock = holder.locker.newLock(id);
    await lock.lock(forever(), () => {});
    await server.outage(async () => {
      await lock.unlock(); // its DELETE cannot reach the database
      // A request for an upload meanwhile hears that the database is away, not that the upload is busy.
      await assert.rejects(lockUpload(asker.locker, randomUUID(), 'busy'), { code: 'unavailable' });
    });
    admin = new pg.Client({ connectionString: url, application_name: 'test-admin' });
    await admin.connect();
    const taken = asker.locker.newLock(id);
    await taken.lock(forever(), () => {}); // the old code: ERR_LOCK_TIMEOUT after 30 s
    assert.equal(await holderOf(id), asker.locker.instanceId);
    await taken.unlock();
  });
});

