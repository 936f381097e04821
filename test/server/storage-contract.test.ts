// One suite, every Storage implementation: what hooks and routes rely on, whichever backend runs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { openDb } from '../../server/db/open.ts';
import { fileKey } from '../../server/storage/keys.ts';
import { createLocalStorage } from '../../server/storage/local.ts';
import { createS3Storage, type S3Storage } from '../../server/storage/s3.ts';
import type { Storage } from '../../server/storage/types.ts';
import { tempDir } from '../helpers/server.ts';
import { createTestBucket } from '../helpers/s3.ts';

const MiB = 1024 * 1024;

interface Backend {
  name: string;
  open(): Promise<{ storage: Storage; close(): Promise<void> }>;
}

/** The S3 backend's bucket and credentials, for the tests that build a second client on it. */
let bucketSettings: Awaited<ReturnType<typeof createTestBucket>>;

const backends: Backend[] = [
  {
    name: 'local disk',
    async open() {
      const dir = tempDir('sl-storage-');
      const db = openDb(dir);
      const storage = await createLocalStorage(dir, db);
      return {
        storage,
        close: async () => {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 's3 (Swift)',
    async open() {
      const bucket = await createTestBucket();
      bucketSettings = bucket;
      const storage = createS3Storage({ ...bucket, maxUploadBytes: 1024 * MiB });
      return { storage, close: async () => storage.client.destroy() };
    },
  },
];

const newId = () => randomBytes(16).toString('hex');

async function collect(stream: Readable | null): Promise<Buffer> {
  assert.ok(stream, 'expected a stream');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

for (const backend of backends) {
  describe(`Storage contract: ${backend.name}`, { timeout: 180_000 }, () => {
    let storage: Storage;
    let close: () => Promise<void>;

    before(async () => ({ storage, close } = await backend.open()));
    after(async () => close?.());

    /** Creates a tus upload of `size` bytes and writes `chunks` in order; returns the id. */
    async function upload(size: number | undefined, ...chunks: Buffer[]): Promise<string> {
      const id = newId();
      await storage.tusStore.create(new Upload({ id, size, offset: 0, metadata: { filename: 'a.bin' } }));
      let offset = 0;
      for (const chunk of chunks) offset = await storage.tusStore.write(Readable.from([chunk]), id, offset);
      return id;
    }

    const keyFor = (id: string, name = 'photo.jpg') => fileKey('alice', new Date(Date.UTC(2024, 1, 29)), id, name);

    test('health passes', async () => {
      await storage.health();
    });

    test('an upload written in chunks reports its offset and can be read back', async () => {
      const data = randomBytes(3 * MiB);
      const id = await upload(4 * MiB, data.subarray(0, MiB), data.subarray(MiB));
      assert.equal((await storage.tusStore.getUpload(id)).offset, data.length);
      assert.ok((await storage.listUploadIds()).includes(id));
      assert.ok((await collect(await storage.readUpload(id, 0, data.length))).equals(data));
      assert.ok((await collect(await storage.readUpload(id, 100, 2 * MiB))).equals(data.subarray(100, 2 * MiB)));
      assert.equal((await collect(await storage.readUpload(id, 5, 5))).length, 0);
    });

    test('digestCheckpointBytes: bytes before the last checkpoint of an open upload may be unreadable, the rest is readable', async () => {
      const step = storage.digestCheckpointBytes;
      if (step === null) return; // every byte can be read back (local disk: tested above)
      const data = randomBytes(step + 3 * MiB);
      const id = await upload(2 * step, data);
      assert.equal((await storage.tusStore.getUpload(id)).offset, data.length);
      assert.equal(await storage.readUpload(id, 0, data.length), null);
      assert.ok((await collect(await storage.readUpload(id, step, data.length))).equals(data.subarray(step)));
      assert.ok((await collect(await storage.readUpload(id, step + 10, step + 20))).equals(data.subarray(step + 10, step + 20)));
      await storage.removeUpload(id);
    });

    test('promote moves the finished bytes to the key and removes the upload; again is a no-op', async () => {
      const data = randomBytes(2 * MiB + 17);
      const id = await upload(data.length, data);
      const key = keyFor(id);
      await storage.promote(id, key);
      const stat = await storage.statFile(key);
      assert.equal(stat?.size, data.length);
      assert.ok(stat.modifiedAt instanceof Date);
      assert.ok((await collect(await storage.openFile(key))).equals(data));
      assert.ok(!(await storage.listUploadIds()).includes(id));
      await assert.rejects(storage.tusStore.getUpload(id));
      await storage.promote(id, key); // a crashed commit runs it again
      assert.ok((await collect(await storage.openFile(key))).equals(data));
    });

    test('promote of a zero-byte upload and of one larger than a part', async () => {
      const empty = await upload(0);
      await storage.promote(empty, keyFor(empty, 'empty.txt'));
      assert.equal((await storage.statFile(keyFor(empty, 'empty.txt')))?.size, 0);
      assert.equal((await collect(await storage.openFile(keyFor(empty, 'empty.txt')))).length, 0);

      const data = randomBytes(9 * MiB + 1);
      const id = await upload(data.length, data.subarray(0, 3 * MiB), data.subarray(3 * MiB));
      await storage.promote(id, keyFor(id));
      assert.ok((await collect(await storage.openFile(keyFor(id)))).equals(data));
    });

    test('promote of an upload that is not there rejects and creates nothing', async () => {
      const id = newId();
      await assert.rejects(storage.promote(id, keyFor(id)));
      assert.equal(await storage.statFile(keyFor(id)), null);
    });

    test('openFile with ranges: bounded, to the end, one byte', async () => {
      const data = randomBytes(MiB + 5);
      const id = await upload(data.length, data);
      const key = keyFor(id);
      await storage.promote(id, key);
      for (const [start, end] of [[0, 0], [10, 99], [1000, data.length - 1], [data.length - 1, data.length - 1]] as const) {
        assert.ok((await collect(await storage.openFile(key, { start, end }))).equals(data.subarray(start, end + 1)), `${start}-${end}`);
      }
    });

    test('openSized: the bytes of a range and the whole stored size; a range past the end is empty; missing is null', async () => {
      const data = randomBytes(MiB + 5);
      const id = await upload(data.length, data);
      const key = keyFor(id);
      await storage.promote(id, key);
      for (const range of [undefined, { start: 0, end: data.length - 1 }, { start: 7, end: 99 }]) {
        const opened = await storage.openSized(key, range);
        assert.equal(opened?.storedSize, data.length);
        const expected = range ? data.subarray(range.start, range.end + 1) : data;
        assert.ok((await collect(opened!.body)).equals(expected), JSON.stringify(range));
      }
      const past = await storage.openSized(key, { start: data.length + 10, end: data.length + 20 });
      assert.equal(past?.storedSize, data.length);
      past!.body.destroy();
      assert.equal(await storage.openSized(keyFor(newId())), null);
    });

    test('listFiles: every finished file with its size, nothing of unfinished uploads', async () => {
      const data = randomBytes(1234);
      const id = await upload(data.length, data);
      const key = keyFor(id, 'listed.bin');
      await storage.promote(id, key);
      const open = await upload(10, Buffer.from('01234'));
      const listed = new Map<string, number>();
      for await (const file of storage.listFiles()) listed.set(file.key, file.size);
      assert.equal(listed.get(key), 1234);
      assert.ok([...listed.keys()].every((k) => k.startsWith('users/')));
      assert.ok(![...listed.keys()].some((k) => k.includes(open)));
      await storage.removeUpload(open);
    });

    test('missing keys: statFile null, openFile rejects, removeFile is a no-op', async () => {
      const key = keyFor(newId());
      assert.equal(await storage.statFile(key), null);
      await assert.rejects(storage.openFile(key), { code: 'ENOENT' });
      await storage.removeFile(key);
    });

    test('removeFile deletes, and again is a no-op', async () => {
      const id = await upload(5, Buffer.from('hello'));
      const key = keyFor(id, 'hello.txt');
      await storage.promote(id, key);
      await storage.removeFile(key);
      assert.equal(await storage.statFile(key), null);
      await storage.removeFile(key);
    });

    test('removeUpload removes an unfinished upload entirely, and again is a no-op', async () => {
      const id = await upload(10 * MiB, randomBytes(3 * MiB));
      await storage.removeUpload(id);
      assert.ok(!(await storage.listUploadIds()).includes(id));
      await assert.rejects(storage.tusStore.getUpload(id));
      await storage.removeUpload(id);
      await storage.removeUpload(newId());
    });

    test('keys and ids that are not ours are refused before any I/O', async () => {
      await assert.rejects(storage.statFile('../../etc/passwd'));
      await assert.rejects(storage.openFile('users/alice/../../x'));
      await assert.rejects(storage.removeUpload('../x'));
      await assert.rejects(storage.readUpload('not-an-id', 0, 1));
    });

    if (backend.name.startsWith('s3')) {
      const s3 = () => storage as S3Storage;
      const objects = async (prefix: string) =>
        ((await s3().client.send(new ListObjectsV2Command({ Bucket: s3().bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
      const multipart = async (prefix: string) =>
        ((await s3().client.send(new ListMultipartUploadsCommand({ Bucket: s3().bucket, Prefix: prefix }))).Uploads ?? []).map((u) => u.Key!);

      test('s3: removeUpload aborts the multipart upload and deletes .info and .part (S3Store.remove leaves .part)', async () => {
        const id = await upload(10 * MiB, randomBytes(MiB));
        assert.deepEqual(await objects(id), [`${id}.info`, `${id}.part`]);
        assert.deepEqual(await multipart(id), [id]);
        await storage.removeUpload(id);
        assert.deepEqual(await objects(id), []);
        assert.deepEqual(await multipart(id), []);
      });

      test('s3: promote after a crash at each point ends with the object at its key and nothing else', async () => {
        const data = randomBytes(MiB);
        // (All parts arrived but CompleteMultipartUpload never ran: the zero-byte case above.)
        // 1. the copy is done, the upload's objects are still there.
        const id = await upload(data.length, data);
        const key = keyFor(id);
        await s3().client.send(new PutObjectCommand({ Bucket: s3().bucket, Key: key, Body: data }));
        await storage.promote(id, key);
        assert.deepEqual(await objects(id), []);
        assert.ok((await collect(await storage.openFile(key))).equals(data));
        // 2. a large copy died midway: a stale multipart upload at the key is aborted.
        const id2 = await upload(data.length, data);
        const key2 = keyFor(id2);
        const { CreateMultipartUploadCommand } = await import('@aws-sdk/client-s3');
        await s3().client.send(new CreateMultipartUploadCommand({ Bucket: s3().bucket, Key: key2 }));
        await storage.promote(id2, key2);
        assert.deepEqual(await multipart(key2), []);
        assert.deepEqual(await objects(id2), []);
        assert.ok((await collect(await storage.openFile(key2))).equals(data));
      });

      test('s3: an object above the single-copy limit is moved with UploadPartCopy, byte for byte', async () => {
        // The > 5 GiB path, scaled down: CopyObject only up to 6 MiB, then 5 MiB ranges (S3's
        // smallest part) copied 8 at a time, the last one short.
        const big = createS3Storage({ ...bucketSettings, maxUploadBytes: 1024 * MiB, copy: { singleLimit: 6 * MiB, partBytes: 5 * MiB } });
        try {
          const data = randomBytes(23 * MiB + 5);
          const id = newId();
          await big.tusStore.create(new Upload({ id, size: data.length, offset: 0, metadata: { filename: 'big.bin' } }));
          await big.tusStore.write(Readable.from([data]), id, 0);
          const key = keyFor(id, 'big.bin');
          await big.promote(id, key);
          const stat = await big.statFile(key);
          assert.equal(stat?.size, data.length);
          assert.ok((await collect(await big.openFile(key))).equals(data), 'the copied object has the same bytes');
          // Assembled from 5 copied parts: S3 ETags of multipart objects end in -<parts> (the upload
          // itself had 3 parts of 8 MiB, and a CopyObject keeps the source's).
          const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
          const head = await big.client.send(new HeadObjectCommand({ Bucket: s3().bucket, Key: key }));
          assert.match(head.ETag ?? '', /-5"?$/, `multipart ETag, got ${head.ETag}`);
          assert.deepEqual(await objects(id), []);
          assert.deepEqual(await multipart(key), []);
          assert.deepEqual(await multipart(id), []);
          // At or below the limit it is one CopyObject.
          const small = randomBytes(6 * MiB);
          const id2 = newId();
          await big.tusStore.create(new Upload({ id: id2, size: small.length, offset: 0, metadata: { filename: 'small.bin' } }));
          await big.tusStore.write(Readable.from([small]), id2, 0);
          await big.promote(id2, keyFor(id2, 'small.bin'));
          assert.ok((await collect(await big.openFile(keyFor(id2, 'small.bin')))).equals(small));
        } finally {
          big.client.destroy();
        }
      });

      test('s3: a multipart copy that fails is aborted and leaves nothing at the key', async () => {
        // Parts under S3's 5 MiB minimum make CompleteMultipartUpload fail (EntityTooSmall).
        const big = createS3Storage({ ...bucketSettings, maxUploadBytes: 1024 * MiB, copy: { singleLimit: MiB, partBytes: MiB } });
        try {
          const data = randomBytes(3 * MiB);
          const id = newId();
          await big.tusStore.create(new Upload({ id, size: data.length, offset: 0, metadata: { filename: 'big.bin' } }));
          await big.tusStore.write(Readable.from([data]), id, 0);
          const key = keyFor(id, 'big.bin');
          await assert.rejects(big.promote(id, key));
          assert.equal(await big.statFile(key), null);
          assert.deepEqual(await multipart(key), [], 'the failed copy is aborted');
          // The upload is untouched: a retry with a working copy moves it.
          assert.ok((await objects(id)).includes(id));
          await storage.promote(id, key);
          assert.ok((await collect(await storage.openFile(key))).equals(data));
        } finally {
          big.client.destroy();
        }
      });

      test('s3: listUploadIds does not list finished files', async () => {
        const ids = await storage.listUploadIds();
        assert.ok(ids.every((id) => /^[0-9a-f]{32}$/.test(id)));
      });
    }
  });
}
