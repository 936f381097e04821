// The scan worker's batches (server/scan/worker.ts): jobs taken several at a time and their
// verdicts recorded together, on the real SQLite repository. A clamd stand-in (the Clamd
// interface) decides each verdict, so a failure can be put at an exact point of a batch; the
// client's own behaviour against a real clamd is in clamd.test.ts and ../scan.test.ts.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Repository } from '../../../server/db/contract.ts';
import { openDb } from '../../../server/db/open.ts';
import type { FileRow } from '../../../server/db/repo.ts';
import { createSqliteRepository } from '../../../server/db/sqlite-repository.ts';
import { ClamdUnavailable, type Clamd, type Verdict } from '../../../server/scan/clamd.ts';
import { createScanWorker } from '../../../server/scan/worker.ts';
import type { Storage } from '../../../server/storage/types.ts';
import { tempDir } from '../../helpers/server.ts';
import { until } from '../../helpers/until.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A database with `n` ready files waiting for their scan, each file's bytes its own key. */
async function queued(n: number, dir = tempDir()): Promise<{ repo: Repository; keys: string[]; dir: string; close(): void }> {
  dirs.push(dir);
  const db = openDb(dir);
  const repo = createSqliteRepository(db, { webhookUrls: ['http://127.0.0.1:9/hook'], now: Date.now });
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `users/u1/2026/01/01/${String(i).padStart(32, '0')}.bin`;
    const file: FileRow = {
      key, user_id: 'u1', upload_id: `up${i}`, folder: '', filename: `f${i}.bin`, content_type: 'application/octet-stream',
      size: 10 + i, sha256: '0'.repeat(64), created_at: 1, state: 'ready', detected_type: null, category: 'other',
      scan_status: 'pending', scan_signature: null, scanned_at: null,
    };
    await repo.atomically(async (tx) => {
      await tx.replaceUploadWithFile(file);
      await tx.scans.enqueue(key, 0);
    });
    keys.push(key);
  }
  return { repo, keys, dir, close: () => db.close() };
}

const storage = { openFile: async (key: string) => Readable.from([Buffer.from(key)]) } as unknown as Storage;

/** A clamd that reads the bytes (the key) and answers what `judge` says of that key. */
function standIn(judge: (key: string) => Verdict | Error): Clamd & { scans: string[] } {
  const scans: string[] = [];
  return {
    address: 'stand-in',
    scans,
    async scan(source) {
      let key = '';
      for await (const chunk of source) key += String(chunk);
      scans.push(key);
      const verdict = judge(key);
      if (verdict instanceof Error) throw verdict;
      return verdict;
    },
    ping: async () => true,
    close() {},
  };
}

function worker(repo: Repository, clamd: Clamd) {
  return createScanWorker({ repo, storage, clamd, config: { maxBackoffMs: 1000 }, now: Date.now, log: pino({ level: 'silent' }), registry: new Registry() });
}

/** Counts the transactions the worker opens on `repo`. */
function counting(repo: Repository): Repository & { transactions: () => number } {
  let n = 0;
  return { ...repo, atomically: (fn) => (n++, repo.atomically(fn)), transactions: () => n };
}

const verdictsOf = async (repo: Repository, keys: string[]) => Promise.all(keys.map(async (k) => (await repo.getFile(k))?.scan_status));

test('jobs are taken and their verdicts recorded in batches: far fewer transactions than two per file; one file.scanned each', async () => {
  const { repo, keys, close } = await queued(16);
  const counted = counting(repo);
  const clamd = standIn(() => ({ status: 'clean' }));
  const scanning = worker(counted, clamd);
  try {
    const before = counted.transactions(); // start() has its own
    await scanning.start();
    await until('every file clean', async () => (await verdictsOf(repo, keys)).every((s) => s === 'clean'));
    const used = counted.transactions() - before - 1;
    assert.ok(used <= 8, `${used} transactions for 16 files`);
    assert.equal(clamd.scans.length, 16, 'each file scanned once');
    assert.equal((await repo.outbox.counts()).pending, 16, 'one file.scanned event per file');
  } finally {
    await scanning.stop();
    close();
  }
});

test('clamd gone mid-batch: the verdicts found before are recorded, the rest wait as pending and get theirs when clamd is back', async () => {
  const { repo, keys, close } = await queued(6);
  let away = false;
  const clamd = standIn((key) => {
    if (key === keys[2]) away = true; // clamd goes at the third file of the batch
    return away ? new ClamdUnavailable('hung-up', 'clamd went away') : { status: 'clean' };
  });
  const scanning = worker(repo, clamd);
  try {
    await scanning.start();
    await until('the first two recorded, the rest pending', async () => {
      const s = await verdictsOf(repo, keys);
      return s.slice(0, 2).every((v) => v === 'clean') && s.slice(2).every((v) => v === 'pending');
    });
    assert.ok((await repo.scans.job(keys[2]!))!.attempts >= 1, 'postponed, not judged');
    away = false;
    const back = standIn(() => ({ status: 'clean' }));
    Object.assign(clamd, { scan: back.scan });
    await until('every file clean once clamd is back', async () => (await verdictsOf(repo, keys)).every((s) => s === 'clean'), 30_000);
  } finally {
    await scanning.stop();
    close();
  }
});

test('a crash after a batch was scanned and before its verdicts were written loses no verdict: the next start scans those files again', async () => {
  const { repo, keys, dir, close } = await queued(5);
  // The first process dies in the transaction that records the verdicts.
  let recordAttempts = 0;
  const dying: Repository = {
    ...repo,
    atomically: (fn) =>
      repo.atomically((tx) => fn({ ...tx, scans: { ...tx.scans, record: async () => (recordAttempts++, Promise.reject(new Error('the process died'))) } })),
  };
  const first = worker(dying, standIn(() => ({ status: 'infected', signature: 'Test.Sig' })));
  await first.start();
  await until('the batch reached its record step', () => recordAttempts > 0);
  await first.stop();
  assert.deepEqual(await verdictsOf(repo, keys), keys.map(() => 'scanning'), 'no verdict written, none lost: the files wait');
  close();
  // The next process, on the same database.
  const db = openDb(dir);
  const again = createSqliteRepository(db, { webhookUrls: ['http://127.0.0.1:9/hook'], now: Date.now });
  const second = worker(again, standIn(() => ({ status: 'infected', signature: 'Test.Sig' })));
  try {
    await second.start();
    await until('every verdict recorded after the restart', async () => (await verdictsOf(again, keys)).every((s) => s === 'infected'));
    for (const k of keys) assert.equal((await again.getFile(k))!.scan_signature, 'Test.Sig');
  } finally {
    await second.stop();
    db.close();
  }
});
