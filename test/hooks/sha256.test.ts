// The SHA-256 computed while an upload's bytes stream in (hooks/sha256.ts), with its states saved in
// a real SQLite database: each row of the table is an upload written as a series of PATCHes (each a
// list of chunks). Checked: the digest equals the SHA-256 of the whole; the checkpoint engine keeps
// exactly the states a restart needs (the end of the last PATCH and the part end below it); and a
// restarted process (no state in memory) rebuilds the digest from what storage can still read —
// the whole upload on disk, or on S3 only the tail after the last part end.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, createReadStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { reserveAtCreation } from '../../hooks/quota.ts';
import { createDigests } from '../../hooks/sha256.ts';
import { openDb } from '../../server/db/open.ts';
import type { Repository } from '../../server/db/contract.ts';
import { createSqliteRepository } from '../../server/db/sqlite-repository.ts';
import { tempDir } from '../helpers/server.ts';

const UPLOAD = 'a'.repeat(32);

/**
 * Upload bytes in a real file. `step` null: every byte can be read back (local disk). Otherwise
 * bytes below the last multiple of `step` cannot (an S3 multipart upload's completed parts).
 */
function storageOf(step: number | null) {
  const file = path.join(tempDir('sl-sha256-'), UPLOAD);
  writeFileSync(file, '');
  let stored = 0;
  return {
    digestCheckpointBytes: step,
    async readUpload(_id: string, start: number, end: number): Promise<Readable | null> {
      if (step !== null && start < stored - (stored % step)) return null;
      if (end === start) return Readable.from([]);
      return createReadStream(file, { start, end: end - 1 });
    },
    append(chunk: Buffer) {
      appendFileSync(file, chunk);
      stored += chunk.length;
    },
  };
}

async function repoWithUpload(): Promise<Repository> {
  const repo = createSqliteRepository(openDb(tempDir('sl-sha256-db-')), { webhookUrls: [], now: () => 0 });
  const deps = { repo, quotaBytes: Infinity, maxUploadBytes: Infinity, maxUnfinishedUploads: Infinity, now: () => 0 };
  await reserveAtCreation(deps, { userId: 'ana', filename: 'a.bin', folder: 'main', contentType: 'application/octet-stream', sha256: null }, { uploadId: UPLOAD, length: null, bodyLength: null, hasBody: false });
  return repo;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('SHA-256 while streaming, and its checkpoints', () => {
  const cases: [name: string, step: number | null, patches: number[][]][] = [
    ['disk: one PATCH', null, [[1000]]],
    ['disk: three PATCHes of uneven chunks', null, [[100, 7], [300], [1, 592]]],
    ['disk: an empty PATCH between two', null, [[500], [], [500]]],
    ['checkpoints: PATCHes inside one part', 64, [[10], [20], [30]]],
    ['checkpoints: chunks crossing part ends', 64, [[10, 100], [3, 200, 1], [686]]],
    ['checkpoints: PATCHes ending exactly on part ends', 64, [[128], [64], [1, 63]]],
    ['checkpoints: one chunk over several parts', 64, [[1000]]],
  ];
  for (const [name, step, patches] of cases) {
    test(name, async () => {
      const storage = storageOf(step);
      const repo = await repoWithUpload();
      const digests = createDigests(storage, repo);
      const data = randomBytes(patches.flat().reduce((a, b) => a + b, 0));
      let offset = 0;
      for (const chunks of patches) {
        const parts = chunks.map((size, i) => data.subarray(offset + chunks.slice(0, i).reduce((a, b) => a + b, 0), offset + chunks.slice(0, i + 1).reduce((a, b) => a + b, 0)));
        const observed = await digests.observe(UPLOAD, offset, Readable.from(parts));
        for await (const chunk of observed.stream) storage.append(chunk as Buffer);
        offset += chunks.reduce((a, b) => a + b, 0);
        await observed.settle(offset);
        const saved = (await repo.digestCheckpoints(UPLOAD, Number.MAX_SAFE_INTEGER)).map((c) => c.offset).sort((a, b) => a - b);
        const expected = step === null ? [] : [...new Set([offset - (offset % step), offset])].filter((o) => o > 0).sort((a, b) => a - b);
        assert.deepEqual(saved, expected, `saved states after the PATCH ending at ${offset}`);
      }
      // The same process: the state in memory is the digest.
      assert.equal(await createDigests(storage, repo).finish(UPLOAD, data.length), sha256(data), 'rebuilt by a restarted process');
      assert.equal(await digests.finish(UPLOAD, data.length), sha256(data), 'in the same process');
    });
  }

  test('a PATCH that failed keeps no state: the next one rebuilds from what is stored', async () => {
    for (const step of [null, 64]) {
      const storage = storageOf(step);
      const repo = await repoWithUpload();
      const digests = createDigests(storage, repo);
      const data = randomBytes(300);
      const first = await digests.observe(UPLOAD, 0, Readable.from([data.subarray(0, 100)]));
      for await (const chunk of first.stream) storage.append(chunk as Buffer);
      await first.settle(100);
      // The store wrote 50 of 100 bytes and failed: only those are stored.
      const second = await digests.observe(UPLOAD, 100, Readable.from([data.subarray(100, 200)]));
      for await (const chunk of second.stream) void chunk;
      storage.append(data.subarray(100, 150));
      await second.settle(null);
      const third = await digests.observe(UPLOAD, 150, Readable.from([data.subarray(150)]));
      for await (const chunk of third.stream) storage.append(chunk as Buffer);
      await third.settle(300);
      assert.equal(await digests.finish(UPLOAD, 300), sha256(data), `step ${step}`);
    }
  });

  // The store's write reads the tap: a source that died must fail it, never leave it waiting.
  const deaths: [name: string, kill: (source: Readable) => void, expected: RegExp][] = [
    ['fails before the tap is built', (source) => source.destroy(new Error('client vanished')), /client vanished/],
    ['fails while the tap reads it', (source) => setImmediate(() => source.destroy(new Error('client vanished'))), /client vanished/],
    ['closes before its end, without an error', (source) => setImmediate(() => source.destroy()), /Premature close/],
  ];
  for (const [name, kill, expected] of deaths) {
    test(`a source that ${name} fails the stream to storage`, async () => {
      const storage = storageOf(null);
      const digests = createDigests(storage, await repoWithUpload());
      const source = new Readable({ read() {} });
      source.on('error', () => {}); // as tus's own listener on the body it hands the store
      source.push(randomBytes(100));
      if (name.includes('before')) kill(source);
      const observed = await digests.observe(UPLOAD, 0, source);
      if (!name.includes('before')) kill(source);
      await assert.rejects(async () => {
        for await (const chunk of observed.stream) storage.append(chunk as Buffer);
      }, expected);
      await observed.settle(null);
    });
  }

  test('the watcher sees every chunk that goes to storage, and none after a cut', async () => {
    const storage = storageOf(null);
    const digests = createDigests(storage, await repoWithUpload());
    const seen: number[] = [];
    let first: () => void;
    const firstSeen = new Promise<void>((resolve) => (first = resolve));
    const source = new Readable({ read() {} });
    const observed = await digests.observe(UPLOAD, 0, source, {
      chunk: (bytes) => {
        seen.push(bytes.length);
        first();
      },
    });
    let stored = 0;
    const reading = (async () => {
      for await (const chunk of observed.stream) stored += (chunk as Buffer).length;
    })();
    source.push(randomBytes(3));
    await firstSeen;
    observed.cut();
    source.push(randomBytes(4));
    source.push(null);
    await reading;
    assert.equal(stored, 3, 'bytes that reached storage');
    assert.deepEqual(seen, [3]);
  });
});
