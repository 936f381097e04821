// One suite, both repository implementations (server/db/contract.ts): SQLite and PostgreSQL give the
// same answers, including to bad input, and the PostgreSQL one holds its promises across two
// instances (two pools on one database): quotas never overshoot, and no two claimers get the same
// scan job, webhook delivery or periodic job.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { OUTER_CALL_IN_TRANSACTION, type FileRow, type Repository, type UploadRow } from '../../../server/db/contract.ts';
import { postgresBackend, sqliteBackend, type OpenRepositories, type RepositoryOptions } from './repository-backends.ts';
import { until } from '../../helpers/until.ts';

const MiB = 1024 * 1024;
const HOOK_A = 'https://a.example/hook';
const HOOK_B = 'https://b.example/hook';

const id = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

function uploadRow(userId: string, reserved: number, over: Partial<UploadRow> = {}): UploadRow {
  return {
    id: id('up'), user_id: userId, length: reserved, reserved_bytes: reserved, filename: 'a.bin', folder: '',
    content_type: 'application/octet-stream', sha256_declared: null, created_at: 1_000, touched_at: 1_000,
    head: null, type_checked: 0, detected_type: null, ...over,
  };
}

function fileOf(upload: UploadRow, over: Partial<FileRow> = {}): FileRow {
  return {
    key: `${upload.user_id}/${upload.id}/${upload.filename}`, user_id: upload.user_id, upload_id: upload.id,
    folder: upload.folder, filename: upload.filename, content_type: upload.content_type, size: upload.length ?? 0,
    sha256: 'ab'.repeat(32), created_at: upload.created_at, state: 'committing', detected_type: null, category: null,
    scan_status: null, scan_signature: null, scanned_at: null, ...over,
  };
}

/** A ready file of `size` bytes for `userId`, through the path an upload takes. */
async function readyFile(repo: Repository, userId: string, size: number, over: Partial<UploadRow> = {}): Promise<FileRow> {
  const upload = uploadRow(userId, size, over);
  assert.equal(await repo.reserveUpload(upload, 100 * MiB, 1000), 'reserved');
  const file = fileOf(upload);
  await repo.replaceUploadWithFile({ ...file, state: 'ready' });
  return (await repo.getFile(file.key))!;
}

// SQLite twice: the gate without its development check is what production runs.
for (const backend of [sqliteBackend(), sqliteBackend({ devChecks: false }), postgresBackend()]) {
  describe(`Repository contract: ${backend.name}`, { skip: backend.skip, timeout: 300_000 }, () => {
    let clock = 1_000_000;
    const opened: OpenRepositories[] = [];
    const open = async (options: Partial<RepositoryOptions> = {}) => {
      const repos = await backend.open({ webhookUrls: [HOOK_A, HOOK_B], now: () => clock, ...options });
      opened.push(repos);
      return repos;
    };
    let a: Repository;
    let b: Repository;

    before(async () => {
      await backend.start();
      ({ a, b } = await open());
    });
    after(async () => {
      for (const repos of opened) await repos.close();
      await backend.stop();
    });

    test('an upload reads back as written, and its reservation counts against the quota', async () => {
      const user = id('u');
      const row = uploadRow(user, 5 * MiB, { head: Buffer.from([1, 2, 3]), sha256_declared: 'cd'.repeat(32), folder: 'photos' });
      assert.equal(await a.ping(), true);
      assert.deepEqual(await a.usage(user), { used_bytes: 0, reserved_bytes: 0 });
      assert.equal(await a.reserveUpload(row, 20 * MiB, 10), 'reserved');
      assert.deepEqual(await b.getUpload(row.id), row);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 5 * MiB });
      assert.equal(await b.roomFor(user, row.id, 20 * MiB), 20 * MiB);
      assert.equal(await b.roomFor(user, 'someone-else', 20 * MiB), 15 * MiB);
      await a.setUploadType(row.id, 'image/png');
      assert.deepEqual(await b.getUpload(row.id), { ...row, head: null, type_checked: 1, detected_type: 'image/png' });
      await a.setUploadHead(row.id, Buffer.from([9])); // ignored once the type is known
      assert.equal((await b.getUpload(row.id))!.head, null);
      await a.touchUpload(row.id, 5_000);
      assert.deepEqual(await b.idleUploads(5_001, 100).then((rows) => rows.filter((r) => r.user_id === user).map((r) => r.id)), [row.id]);
      assert.deepEqual(await b.idleUploads(5_000, 100).then((rows) => rows.filter((r) => r.user_id === user)), []);
      assert.ok((await b.unfinishedUploadIds()).includes(row.id));
      assert.ok((await b.knownUploadIds()).has(row.id));
      await a.deleteUpload(row.id);
      assert.equal(await b.getUpload(row.id), undefined);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 0 });
    });

    test('a reservation that does not fit, or one upload too many, writes nothing and says which limit refused it', async () => {
      const user = id('u');
      assert.equal(await a.reserveUpload(uploadRow(user, 15 * MiB), 20 * MiB, 2), 'reserved');
      const tooBig = uploadRow(user, 5 * MiB + 1);
      assert.equal(await a.reserveUpload(tooBig, 20 * MiB, 2), 'quota');
      assert.equal(await b.getUpload(tooBig.id), undefined);
      assert.equal(await a.reserveUpload(uploadRow(user, 5 * MiB), 20 * MiB, 2), 'reserved'); // exactly full
      const third = uploadRow(user, 0);
      assert.equal(await a.reserveUpload(third, 20 * MiB, 2), 'count');
      assert.equal(await b.getUpload(third.id), undefined);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 20 * MiB });
    });

    test('a reservation grows only while it fits, always shrinks, and an unknown upload has none', async () => {
      const user = id('u');
      const deferred = uploadRow(user, 0, { length: null });
      assert.equal(await a.reserveUpload(deferred, 10 * MiB, 10), 'reserved');
      assert.equal(await a.reserveUpload(uploadRow(user, 4 * MiB), 10 * MiB, 10), 'reserved');
      assert.equal(await b.setReservation(deferred.id, 6 * MiB, null, 10 * MiB, 2_000), true);
      assert.equal(await b.setReservation(deferred.id, 6 * MiB + 1, null, 10 * MiB, 2_000), false);
      assert.deepEqual(await a.usage(user), { used_bytes: 0, reserved_bytes: 10 * MiB });
      assert.equal(await b.setReservation(deferred.id, 1 * MiB, 1 * MiB, 10 * MiB, 3_000), true);
      const row = (await a.getUpload(deferred.id))!;
      assert.equal(row.length, 1 * MiB);
      assert.equal(row.reserved_bytes, 1 * MiB);
      assert.equal(row.touched_at, 3_000);
      assert.equal(await b.setReservation('no-such-upload', 1, null, 10 * MiB, 3_000), false);
      assert.equal(await b.getUpload('no-such-upload'), undefined);
      assert.deepEqual(await a.usage(user), { used_bytes: 0, reserved_bytes: 5 * MiB });
    });

    test('12 parallel 3 MiB reservations against a 20 MiB quota, spread over two instances, accept exactly 6', async () => {
      const user = id('u');
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? a : b).reserveUpload(uploadRow(user, 3 * MiB), 20 * MiB, 1000)));
      assert.equal(results.filter((r) => r === 'reserved').length, 6);
      assert.equal(results.filter((r) => r === 'quota').length, 6);
      assert.deepEqual(await a.usage(user), { used_bytes: 0, reserved_bytes: 18 * MiB });
    });

    test('12 deferred-length uploads claiming 3 MiB each at once, over two instances, against 20 MiB: exactly 6 claims pass', async () => {
      const user = id('u');
      const rows = Array.from({ length: 12 }, () => uploadRow(user, 0, { length: null }));
      for (const row of rows) assert.equal(await a.reserveUpload(row, 20 * MiB, 1000), 'reserved');
      const claims = await Promise.all(rows.map((row, i) => (i % 2 ? a : b).setReservation(row.id, 3 * MiB, null, 20 * MiB, 2_000)));
      assert.equal(claims.filter(Boolean).length, 6);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 18 * MiB });
    });

    test('finishing turns the reservation into the file size; a second finish fails and changes nothing', async () => {
      const user = id('u');
      const upload = uploadRow(user, 3 * MiB, { folder: 'docs', filename: 'report.pdf' });
      assert.equal(await a.reserveUpload(upload, 20 * MiB, 10), 'reserved');
      const file: FileRow = { ...fileOf(upload), state: 'ready', detected_type: 'application/pdf', category: 'document' };
      await a.replaceUploadWithFile(file);
      assert.equal(await b.getUpload(upload.id), undefined);
      assert.deepEqual(await b.getFile(file.key), { ...file, damage: null, damaged_at: null });
      assert.deepEqual(await b.getFileByUploadId(upload.id), await b.getFile(file.key));
      assert.deepEqual((await b.filesInTransition()).filter((f) => f.user_id === user), []);
      assert.deepEqual(await b.usage(user), { used_bytes: 3 * MiB, reserved_bytes: 0 });

      await assert.rejects(b.replaceUploadWithFile(file));
      await assert.rejects(b.replaceUploadWithFile({ ...file, key: `${file.key}.again` }), 'one upload becomes one file');
      assert.deepEqual(await a.usage(user), { used_bytes: 3 * MiB, reserved_bytes: 0 });
      assert.deepEqual(await b.legacyParts.fileOfUpload(upload.id), { ...file, damage: null, damaged_at: null });
      await b.deleteFile(file.key);
      await b.deleteFile(file.key); // twice: nothing left to delete
      assert.deepEqual(await a.usage(user), { used_bytes: 0, reserved_bytes: 0 });
    });

    test('unknown ids read as absent and changes to them change nothing', async () => {
      const missing = id('missing');
      assert.equal(await a.getUpload(missing), undefined);
      assert.equal(await a.getFile(missing), undefined);
      assert.equal(await a.getFileByUploadId(missing), undefined);
      assert.equal(await a.isPartialUpload(missing), false);
      await a.touchUpload(missing, 1);
      await a.deleteUpload(missing);
      await a.setFileState(missing, 'ready');
      await a.deleteFile(missing);
      await a.saveDigestCheckpoint(missing, 10, new Uint8Array([1]));
      assert.deepEqual(await a.digestCheckpoints(missing, 100), []);
      await a.legacyParts.set(missing, { part_number: 1, start: 0, length: 10 });
      assert.equal(await a.legacyParts.get(missing), undefined);
      assert.equal(await a.legacyParts.fileOfUpload(missing), undefined);
      assert.equal(await a.markDamage(missing, 'missing', 1), false);
      assert.equal(await a.clearDamage(missing), false);
      assert.equal(await a.scans.job(missing), undefined);
    });

    test('usage counters follow files, damage marks and deletions; listings page newest first', async () => {
      const user = id('u');
      const files: FileRow[] = [];
      for (let i = 0; i < 5; i++) {
        files.push(await readyFile(a, user, (i + 1) * 1000, { created_at: 10_000 + Math.floor(i / 2), folder: i % 2 ? 'odd' : 'even' }));
      }
      assert.deepEqual(await b.usage(user), { used_bytes: 15_000, reserved_bytes: 0 });
      assert.equal((await b.usageByUser()).get(user), 15_000);

      assert.equal(await b.markDamage(files[4]!.key, 'missing', 5), true);
      assert.equal(await b.markDamage(files[4]!.key, 'missing', 6), false, 'the same mark again is no change');
      assert.equal(await b.markDamage(files[4]!.key, 'size_mismatch', 7), true);
      assert.deepEqual(await a.usage(user), { used_bytes: 10_000, reserved_bytes: 0 });
      assert.equal((await a.usageByUser()).get(user), 10_000);
      assert.ok((await a.countDamagedFiles()) >= 1);
      const firstPage = await a.listFiles({ userId: user, limit: 2 });
      // Newest first; equal times by key, descending. The damaged file is left out.
      const expected = files.slice(0, 4).sort((x, y) => y.created_at - x.created_at || (x.key < y.key ? 1 : -1)).map((f) => f.key);
      assert.deepEqual(firstPage.map((f) => f.key), expected.slice(0, 2));
      const last = firstPage.at(-1)!;
      const secondPage = await a.listFiles({ userId: user, limit: 10, after: { createdAt: last.created_at, key: last.key } });
      assert.deepEqual(secondPage.map((f) => f.key), expected.slice(2));
      assert.deepEqual((await a.listFiles({ userId: user, folder: 'odd', limit: 10 })).map((f) => f.key).sort(), [files[1]!.key, files[3]!.key].sort());

      assert.equal(await b.clearDamage(files[4]!.key), true);
      assert.equal(await b.clearDamage(files[4]!.key), false);
      assert.deepEqual(await a.usage(user), { used_bytes: 15_000, reserved_bytes: 0 });
      const ready: string[] = [];
      for await (const file of b.readyFiles()) if (file.user_id === user) ready.push(file.key);
      assert.deepEqual(ready, files.map((f) => f.key).sort());
      assert.ok((await b.allFileKeys()).has(files[0]!.key));
      for (const file of files) await a.deleteFile(file.key);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 0 });
    });

    test('digest checkpoints, partial marks and original-API parts go with their upload', async () => {
      const upload = uploadRow(id('u'), 100);
      assert.equal(await a.reserveUpload(upload, MiB, 10), 'reserved');
      for (const offset of [10, 20, 30]) await a.saveDigestCheckpoint(upload.id, offset, new Uint8Array([offset]));
      await a.saveDigestCheckpoint(upload.id, 20, new Uint8Array([99])); // replaced
      assert.deepEqual(await b.digestCheckpoints(upload.id, 25), [{ offset: 20, state: Buffer.from([99]) }, { offset: 10, state: Buffer.from([10]) }]);
      await b.pruneDigestCheckpoints(upload.id, [20, 30]);
      assert.deepEqual((await a.digestCheckpoints(upload.id, 100)).map((c) => c.offset), [30, 20]);
      await a.markPartialUpload(upload.id);
      await a.markPartialUpload(upload.id);
      assert.equal(await b.isPartialUpload(upload.id), true);
      await a.legacyParts.set(upload.id, { part_number: 2, start: 50, length: 25 });
      assert.deepEqual(await b.legacyParts.get(upload.id), { part_number: 2, start: 50, length: 25 });
      await b.deleteUpload(upload.id);
      assert.deepEqual(await a.digestCheckpoints(upload.id, 100), []);
      assert.equal(await a.isPartialUpload(upload.id), false);
      assert.equal(await a.legacyParts.get(upload.id), undefined);
    });

    test('a transaction commits its change with its event, or neither', async () => {
      let emitted = 0;
      const { a: repo } = await open({ onEmit: () => emitted++ });
      const user = id('u');
      const kept = uploadRow(user, 10);
      await repo.atomically(async (tx) => {
        assert.equal(await tx.reserveUpload(kept, MiB, 10), 'reserved');
        await tx.outbox.emit('upload.created', kept.id, { upload_id: kept.id });
      });
      const dropped = uploadRow(user, 10);
      await assert.rejects(repo.atomically(async (tx) => {
        await tx.reserveUpload(dropped, MiB, 10);
        await tx.outbox.emit('upload.created', dropped.id, { upload_id: dropped.id });
        throw new Error('the change failed');
      }), /the change failed/);
      assert.equal(await repo.getUpload(dropped.id), undefined);
      assert.deepEqual(await repo.usage(user), { used_bytes: 0, reserved_bytes: 10 });
      const heads = await repo.outbox.dueHeads(HOOK_A, clock, 10);
      assert.deepEqual(heads.map((d) => [d.subject, d.type, d.attempts]), [[kept.id, 'upload.created', 0]]);
      assert.deepEqual(JSON.parse(heads[0]!.body).data, { upload_id: kept.id });
      assert.deepEqual(await repo.outbox.counts(), { pending: 2, dead: 0 });
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(emitted >= 1, 'the dispatcher is woken for the committed event');
    });

    test('afterCommit runs once the transaction has committed, never after a rollback', async () => {
      const { a: repo } = await open();
      const ran: string[] = [];
      const kept = uploadRow(id('u'), 10);
      await repo.atomically(async (tx) => {
        await tx.reserveUpload(kept, MiB, 10);
        // What runs may use the outer repository, and sees the commit.
        tx.afterCommit(() => void repo.getUpload(kept.id).then((row) => ran.push(row ? 'kept: visible' : 'kept: not visible')));
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(ran, [], 'not while the transaction is open');
      });
      await assert.rejects(repo.atomically(async (tx) => {
        tx.afterCommit(() => ran.push('rolled back'));
        throw new Error('the change failed');
      }), /the change failed/);
      await until('the committed callback ran', () => ran.length > 0);
      await new Promise((resolve) => repo.afterCommit(() => resolve(undefined))); // and the outer one runs too
      assert.deepEqual(ran, ['kept: visible']);
    });

    test('without receivers (webhooks off) an event is not written', async () => {
      let emitted = 0;
      const { a: repo } = await open({ webhookUrls: [], onEmit: () => emitted++ });
      await repo.outbox.emit('upload.created', 'up_1', {});
      await repo.atomically((tx) => tx.outbox.emit('upload.finished', 'up_1', {}));
      assert.deepEqual(await repo.outbox.counts(), { pending: 0, dead: 0 });
      assert.equal(await repo.outbox.prune(clock + 1, clock + 1, 10), 0, 'no event rows to prune');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(emitted, 0, 'and no dispatcher to wake');
    });

    test('a request outside a transaction is not part of it: its write stays when the transaction rolls back', async () => {
      const user = id('u');
      const inside = uploadRow(user, 10);
      const outside = uploadRow(user, 20);
      let entered!: () => void;
      let proceed!: () => void;
      const inTransaction = new Promise<void>((resolve) => (entered = resolve));
      const go = new Promise<void>((resolve) => (proceed = resolve));
      const transaction = a.atomically(async (tx) => {
        assert.equal(await tx.reserveUpload(inside, MiB, 10), 'reserved');
        entered();
        await go;
        throw new Error('the change failed');
      });
      await inTransaction;
      const another = a.reserveUpload(outside, MiB, 10); // another request, meanwhile
      await new Promise((resolve) => setImmediate(resolve));
      proceed();
      await assert.rejects(transaction, /the change failed/);
      assert.equal(await another, 'reserved');
      assert.equal(await b.getUpload(inside.id), undefined);
      assert.deepEqual(await b.getUpload(outside.id), outside);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 20 });
    });

    if (backend.name === 'SQLite') {
      test('with the development checks, the outer repository called inside a transaction is refused, not left waiting for it', async () => {
        const row = uploadRow(id('u'), 10);
        await assert.rejects(a.atomically(async (tx) => {
          await tx.reserveUpload(row, MiB, 10);
          await a.getUpload(row.id);
        }), { message: OUTER_CALL_IN_TRANSACTION });
        await assert.rejects(a.atomically(() => a.atomically(async () => {})), { message: OUTER_CALL_IN_TRANSACTION });
        assert.equal(await a.getUpload(row.id), undefined, 'the transaction rolled back, and the repository serves on');
      });
    }

    test('a nested transaction that fails takes back only its own writes', async () => {
      const user = id('u');
      const kept = uploadRow(user, 10);
      const dropped = uploadRow(user, 20);
      await a.atomically(async (tx) => {
        await tx.reserveUpload(kept, MiB, 10);
        await assert.rejects(tx.atomically(async (inner) => {
          await inner.reserveUpload(dropped, MiB, 10);
          throw new Error('inner failure');
        }), /inner failure/);
      });
      assert.deepEqual(await b.getUpload(kept.id), kept);
      assert.equal(await b.getUpload(dropped.id), undefined);
      assert.deepEqual(await b.usage(user), { used_bytes: 0, reserved_bytes: 10 });
    });

    test('the outbox sends one subject in order, holds successors behind a backing-off head, and prunes what all received', async () => {
      const { a: repo } = await open();
      for (const type of ['upload.created', 'upload.finished'] as const) await repo.outbox.emit(type, 'up_1', {});
      await repo.outbox.emit('upload.created', 'up_2', {});
      let heads = await repo.outbox.dueHeads(HOOK_A, clock, 10);
      assert.deepEqual(heads.map((d) => [d.subject, d.type]), [['up_1', 'upload.created'], ['up_2', 'upload.created']]);
      await repo.outbox.retryLater(heads[0]!, clock + 60_000, 'HTTP 500');
      assert.deepEqual((await repo.outbox.dueHeads(HOOK_A, clock + 59_999, 10)).map((d) => d.subject), ['up_2']);
      assert.equal(await repo.outbox.nextDueAt(HOOK_A), clock);
      await repo.outbox.delivered([{ event: heads[1]!.event, url: HOOK_A }]);
      heads = await repo.outbox.dueHeads(HOOK_A, clock + 60_000, 10);
      assert.deepEqual(heads.map((d) => [d.subject, d.type, d.attempts]), [['up_1', 'upload.created', 1]]);
      await repo.outbox.delivered([{ event: heads[0]!.event, url: HOOK_A }]);
      heads = await repo.outbox.dueHeads(HOOK_A, clock + 60_000, 10);
      assert.deepEqual(heads.map((d) => [d.subject, d.type]), [['up_1', 'upload.finished']]);
      await repo.outbox.dead(heads[0]!.event, HOOK_A, 'gone');
      assert.deepEqual(await repo.outbox.counts(), { pending: 3, dead: 1 });
      assert.equal(await repo.outbox.dropPendingExcept([HOOK_A]), 3);
      assert.equal(await repo.outbox.nextDueAt(HOOK_B), null);
      assert.equal(await repo.outbox.prune(clock + 1, clock, 10), 2, 'the delivered events go; the dead one stays until its own retention');
      assert.equal(await repo.outbox.prune(clock + 1, clock + 1, 10), 1);
      assert.deepEqual(await repo.outbox.counts(), { pending: 0, dead: 0 });
    });

    test('two claimers never get the same webhook delivery; a claim ends with its lease, its outcome or its hand-back', async () => {
      const { a: one, b: two } = await open();
      for (let i = 0; i < 30; i++) await one.outbox.emit('upload.created', `up_${i}`, {});
      const batches = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).outbox.claimDue(HOOK_A, clock, 4, 60_000)));
      const claimed = batches.flat().map((d) => d.subject);
      assert.equal(new Set(claimed).size, claimed.length, 'no delivery claimed twice');
      assert.equal(claimed.length, 30);
      assert.deepEqual(await two.outbox.claimDue(HOOK_A, clock, 10, 60_000), []);
      const first = batches.flat()[0]!;
      await one.outbox.retryLater(first, clock, 'HTTP 503'); // the outcome ends the claim
      const [again] = await two.outbox.claimDue(HOOK_A, clock, 10, 60_000);
      assert.equal(again?.subject, first.subject);
      await two.outbox.unclaim([again!]); // handed back by a stopping dispatcher: no attempt counted
      const [handedBack] = await one.outbox.claimDue(HOOK_A, clock, 10, 60_000);
      assert.deepEqual([handedBack?.subject, handedBack?.attempts], [first.subject, 1]);
      // A claimer that died: its claims come back when the lease ends, to one claimer only.
      const late = await Promise.all([one, two, one, two].map((repo) => repo.outbox.claimDue(HOOK_A, clock + 60_000, 100, 60_000)));
      assert.equal(late.flat().length, 30);
      assert.equal(new Set(late.flat().map((d) => d.subject)).size, 30);
    });

    test('scan jobs: two claimers never take one file; a verdict is recorded once; an abandoned scan waits again', async () => {
      const { a: one, b: two } = await open();
      const user = id('u');
      const keys: string[] = [];
      for (let i = 0; i < 20; i++) {
        const file = await readyFile(one, user, 10);
        await one.scans.enqueue(file.key, clock);
        keys.push(file.key);
      }
      assert.equal(await two.scans.depth(), 20);
      assert.equal(await two.scans.nextRunAt(), clock);
      assert.equal(await one.scans.take(clock - 1, 60_000), undefined, 'nothing is due yet');
      const taken = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? one : two).scans.take(clock, 60_000)));
      const files = taken.filter((t) => t !== undefined).map((t) => t.file);
      assert.equal(files.length, 20);
      assert.deepEqual(files.map((f) => f.key).sort(), [...keys].sort(), 'each file taken once');
      assert.ok(files.every((f) => f.scan_status === 'scanning'));

      const recorded = await one.scans.record(keys[0]!, 'infected', 'Eicar-Test-Signature', clock);
      assert.equal(recorded?.scan_status, 'infected');
      assert.equal(recorded?.scan_signature, 'Eicar-Test-Signature');
      assert.equal(await two.scans.job(keys[0]!), undefined);
      await two.scans.postpone(keys[1]!, clock + 5_000, 'clamd unreachable');
      assert.deepEqual(await one.scans.job(keys[1]!), { attempts: 1, run_at: clock + 5_000, last_error: 'clamd unreachable' });
      assert.equal((await one.getFile(keys[1]!))!.scan_status, 'pending');
      assert.equal(await one.scans.retryNow(clock), 1);
      await one.scans.release(keys[2]!);
      const again = await Promise.all([one, two, one].map((repo) => repo.scans.take(clock, 60_000)));
      assert.deepEqual(again.filter((t) => t !== undefined).map((t) => [t.file.key, t.attempts]).sort(), [[keys[1], 1], [keys[2], 0]].sort());

      await one.setFileState(keys[3]!, 'deleting');
      await one.deleteFile(keys[3]!);
      assert.equal(await two.scans.record(keys[3]!, 'clean', null, clock), undefined, 'a file deleted while it was scanned records nothing');
      assert.equal(await two.scans.depth(), 18);
    });

    test("a renewed scan claim is not taken again until the renewal ends; a handed-back job's claim is not renewed", async () => {
      const { a: one, b: two } = await open();
      const user = id('u');
      const keys: string[] = [];
      for (let i = 0; i < 2; i++) {
        const file = await readyFile(one, user, 10);
        await one.scans.enqueue(file.key, clock);
        keys.push(file.key);
      }
      const taken = [await one.scans.take(clock, 1_000), await one.scans.take(clock, 1_000)].map((t) => t?.file.key);
      assert.deepEqual([...taken].sort(), [...keys].sort());
      const [scanning, handedBack] = taken as [string, string];
      await one.scans.release(handedBack);
      await one.scans.renew(keys, clock + 10_000);
      // Past the first lease: the handed-back job is taken, the renewed one is not.
      assert.equal((await two.scans.take(clock + 5_000, 1_000))?.file.key, handedBack);
      assert.equal(await two.scans.take(clock + 5_000, 1_000), undefined, 'the renewed claim holds');
      await one.scans.renew([], clock + 20_000); // nothing to renew: no error
      // PostgreSQL: once the renewal ends, another instance takes the job of an instance that stopped
      // renewing (it died). SQLite (one instance): a claim ends only at the next start.
      const late = await two.scans.take(clock + 10_000, 1_000);
      assert.equal(late?.file.key, backend.name === 'PostgreSQL' ? scanning : undefined);
    });

    test('start-up queues ready files without a verdict and frees scans a crash interrupted', async () => {
      const { a: repo } = await open();
      const user = id('u');
      const unscanned = await readyFile(repo, user, 10); // recorded while scanning was off
      const queued = await readyFile(repo, user, 10);
      await repo.scans.enqueue(queued.key, clock);
      assert.ok(await repo.scans.take(clock, 1_000));
      // On SQLite every 'scanning' file is freed; on PostgreSQL those whose lease ended.
      assert.equal(await repo.scans.resetInterrupted(clock + 1_000), 1);
      assert.equal((await repo.getFile(queued.key))!.scan_status, 'pending');
      assert.equal(await repo.scans.backfill(clock), 1);
      assert.equal((await repo.getFile(unscanned.key))!.scan_status, 'pending');
      assert.equal(await repo.scans.depth(), 2);
    });

    test('a periodic job is leased to one instance at a time', async () => {
      const name = id('expiry');
      const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).leases.acquire(name, `instance_${i}`, clock, 30_000)));
      assert.equal(outcomes.filter(Boolean).length, 1);
      const holder = `instance_${outcomes.indexOf(true)}`;
      assert.equal(await a.leases.acquire(name, holder, clock + 10_000, 30_000), true, 'the holder renews');
      assert.equal(await b.leases.acquire(name, 'other', clock + 39_999, 30_000), false);
      assert.equal(await b.leases.acquire(name, 'other', clock + 40_000, 30_000), true, 'taken over when the lease ended');
      await a.leases.release(name, holder); // no longer the holder: nothing happens
      assert.equal(await a.leases.acquire(name, holder, clock + 40_001, 30_000), false);
      await b.leases.release(name, 'other');
      assert.equal(await a.leases.acquire(name, holder, clock + 40_001, 30_000), true);
    });

    test('instances beat and are seen by the others until they leave or their beats stop', async () => {
      const [x, y] = [id('x'), id('y')];
      await a.instances.beat(x, clock);
      await b.instances.beat(y, clock + 1000);
      assert.ok((await b.instances.seenSince(y, clock)).has(x));
      assert.ok(!(await b.instances.seenSince(y, clock)).has(y), 'an instance is not among the others');
      assert.ok(!(await b.instances.seenSince(y, clock + 1)).has(x), 'not seen since its last beat');
      await a.instances.beat(x, clock + 5000);
      assert.ok((await b.instances.seenSince(y, clock + 1)).has(x), 'seen again after a beat');
      await a.instances.leave(x);
      assert.ok(!(await b.instances.seenSince(y, 0)).has(x), 'gone once it left');
    });

    test('a deletion names the instance running it until the record goes', async () => {
      const file = await readyFile(a, id('u'), 100);
      await a.markDeleting(file.key, 'instance_a');
      assert.equal((await b.getFile(file.key))?.state, 'deleting');
      assert.equal((await b.deletionOwners()).get(file.key), 'instance_a');
      await b.deleteFile(file.key);
      assert.equal((await a.deletionOwners()).has(file.key), false);
      await a.markDeleting('users/nobody/none', 'instance_a');
      assert.equal((await a.deletionOwners()).has('users/nobody/none'), false, 'no record, no mark');

      // A deletion whose instance is gone (or unnamed) is taken over by one of several racing.
      const named = await readyFile(a, id('u'), 100);
      await a.markDeleting(named.key, 'gone');
      const unnamed = await readyFile(a, id('u'), 100);
      await a.setFileState(unnamed.key, 'deleting');
      for (const [key, previous] of [[named.key, 'gone'], [unnamed.key, null]] as const) {
        const won = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).takeOverDeletion(key, `instance_${i}`, previous)));
        assert.equal(won.filter(Boolean).length, 1, `one takes over ${previous ?? 'an unnamed deletion'}`);
        assert.equal((await a.deletionOwners()).get(key), `instance_${won.indexOf(true)}`);
      }
      assert.equal(await a.takeOverDeletion(file.key, 'instance_a', null), false, 'a file no longer there');
    });
  });
}
