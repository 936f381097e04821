// The scan worker's claims on PostgreSQL, where several instances take scan jobs: a scan longer than
// a lease keeps its job (the worker renews the claim while it runs), so no other instance scans the
// same file meanwhile, and the lease can stay short enough that the job of an instance that died is
// taken again soon (the lapse itself: repository-contract.test.ts). A real PostgreSQL with two pools,
// as two instances hold it; a clamd stand-in holds the scan until the test lets it answer.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { FileRow } from '../../../server/db/repo.ts';
import type { Clamd } from '../../../server/scan/clamd.ts';
import { createScanWorker } from '../../../server/scan/worker.ts';
import type { Storage } from '../../../server/storage/types.ts';
import { until } from '../../helpers/until.ts';
import { postgresBackend, type OpenRepositories } from '../db/repository-backends.ts';

const LEASE_MS = 3_000;
const backend = postgresBackend();

describe('scan claims on PostgreSQL', { skip: backend.skip, timeout: 120_000 }, () => {
  let repos: OpenRepositories;
  before(async () => {
    await backend.start();
    repos = await backend.open({ webhookUrls: [], now: Date.now });
  });
  after(async () => {
    await repos?.close();
    await backend.stop();
  });

  test('a scan that outlasts several leases keeps its job: the other instance never takes it, and the verdict is recorded once', async () => {
    const { a, b } = repos;
    const key = 'users/u1/2026/01/01/lease.bin';
    const file: FileRow = {
      key, user_id: 'u1', upload_id: 'up-lease', folder: '', filename: 'lease.bin', content_type: 'application/octet-stream',
      size: 4, sha256: '0'.repeat(64), created_at: 1, state: 'ready', detected_type: null, category: 'other',
      scan_status: 'pending', scan_signature: null, scanned_at: null,
    };
    await a.atomically(async (tx) => {
      await tx.replaceUploadWithFile(file);
      await tx.scans.enqueue(key, Date.now());
    });

    let started = 0;
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const clamd: Clamd = {
      address: 'stand-in',
      async scan(source) {
        started++;
        source.resume();
        await answered;
        return { status: 'clean' };
      },
      ping: async () => true,
      close() {},
    } as Clamd;
    const storage = { openFile: async () => Readable.from([Buffer.from('abcd')]) } as unknown as Storage;
    const worker = createScanWorker({
      repo: a, storage, clamd, config: { maxBackoffMs: 1000 }, now: Date.now, log: pino({ level: 'silent' }),
      registry: new Registry(), leaseMs: LEASE_MS,
    });
    try {
      await worker.start();
      await until('the scan under way', () => started === 1);
      const takenBy = Date.now();
      // Three leases go by while clamd holds the scan; the other instance asks for due jobs all along.
      while (Date.now() < takenBy + 3 * LEASE_MS) {
        const stolen = await b.scans.take(Date.now(), 60_000);
        assert.equal(stolen?.file.key, undefined, `taken by another instance ${Date.now() - takenBy} ms into the scan`);
        await new Promise((r) => setTimeout(r, 100));
      }
      answer();
      await until('the verdict recorded', async () => (await a.getFile(key))?.scan_status === 'clean' && true);
      assert.equal(started, 1, 'scanned once');
      assert.equal(await b.scans.job(key), undefined, 'the job went with its verdict');
    } finally {
      answer();
      await worker.stop();
    }
  });
});
