// The S3 test server (test/support/swift.ts) and the S3 client settings (server/storage/s3-client.ts)
// against each other: every S3 operation the storage backend relies on, and @tus/s3-store's S3Store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand,
  CreateMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
  UploadPartCopyCommand, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { S3Store, type Options as S3StoreOptions } from '@tus/s3-store';
import { Upload } from '@tus/utils';
import { createS3Client, s3ClientConfig, useContentMd5ForDeleteObjects } from '../../server/storage/s3-client.ts';
import { startSwift, type SwiftServer } from './swift.ts';

const MiB = 1024 * 1024;
const BUCKET = 'harness';

/** S3Store builds its own client from config; this is how it gets the DeleteObjects fix. */
class SwiftCompatibleS3Store extends S3Store {
  constructor(options: S3StoreOptions) {
    super(options);
    useContentMd5ForDeleteObjects(this.client);
  }
}

describe('Swift s3api through createS3Client', { timeout: 120_000 }, () => {
  let swift: SwiftServer;
  let s3: S3Client;
  let config: S3ClientConfig;

  async function put(key: string, body: Buffer | string): Promise<void> {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }
  async function get(key: string, range?: string): Promise<{ bytes: Buffer; contentRange?: string }> {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
    return { bytes: Buffer.from(await res.Body!.transformToByteArray()), contentRange: res.ContentRange };
  }
  async function keys(prefix: string): Promise<string[]> {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return (res.Contents ?? []).map((object) => object.Key!).sort();
  }

  before(async () => {
    swift = await startSwift();
    const options = { ...swift, forcePathStyle: true };
    config = s3ClientConfig(options);
    s3 = createS3Client(options);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  after(async () => {
    s3?.destroy();
    await swift?.stop();
  });

  test('put, get, head', async () => {
    await put('hello.txt', 'hello, swift');
    assert.equal((await get('hello.txt')).bytes.toString(), 'hello, swift');
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'hello.txt' }));
    assert.equal(head.ContentLength, 12);
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'missing' })), { name: 'NotFound' });
  });

  test('ranged GET: bounded and suffix', async () => {
    await put('digits', '0123456789abcdef');
    assert.deepEqual(await get('digits', 'bytes=5-9'), { bytes: Buffer.from('56789'), contentRange: 'bytes 5-9/16' });
    assert.deepEqual(await get('digits', 'bytes=-3'), { bytes: Buffer.from('def'), contentRange: 'bytes 13-15/16' });
  });

  // Reused by the UploadPartCopy test.
  const big = randomBytes(11 * MiB);

  test('multipart upload of 5 + 5 + 1 MiB reads back byte for byte', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'big' }));
    const slices = [big.subarray(0, 5 * MiB), big.subarray(5 * MiB, 10 * MiB), big.subarray(10 * MiB)];
    const parts = [];
    for (const [i, slice] of slices.entries()) {
      const PartNumber = i + 1;
      // A stream body, as the storage backend sends: it must go out as a plain body, not aws-chunked.
      const body = Readable.from([slice]);
      const { ETag } = await s3.send(
        new UploadPartCommand({ Bucket: BUCKET, Key: 'big', UploadId, PartNumber, Body: body, ContentLength: slice.length }),
      );
      parts.push({ PartNumber, ETag });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'big', UploadId, MultipartUpload: { Parts: parts } }));
    const { bytes } = await get('big');
    assert.equal(bytes.length, big.length);
    assert.ok(bytes.equals(big), 'multipart object differs from what was uploaded');
  });

  test('UploadPartCopy assembles an object from ranges of another (the > 5 GiB move)', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'big-copy' }));
    const ranges = [`bytes=0-${6 * MiB - 1}`, `bytes=${6 * MiB}-${big.length - 1}`];
    const parts = [];
    for (const [i, CopySourceRange] of ranges.entries()) {
      const PartNumber = i + 1;
      const res = await s3.send(
        new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'big-copy', UploadId, PartNumber, CopySource: `${BUCKET}/big`, CopySourceRange }),
      );
      parts.push({ PartNumber, ETag: res.CopyPartResult!.ETag });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'big-copy', UploadId, MultipartUpload: { Parts: parts } }));
    assert.ok((await get('big-copy')).bytes.equals(big), 'copied object differs from its source');
  });

  test('CopyObject', async () => {
    await put('original', 'copy me');
    await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy', CopySource: `${BUCKET}/original` }));
    assert.equal((await get('copy')).bytes.toString(), 'copy me');
  });

  test('ListObjectsV2 with a prefix', async () => {
    await Promise.all(['list/a', 'list/b', 'listless', 'other/c'].map((key) => put(key, key)));
    assert.deepEqual(await keys('list/'), ['list/a', 'list/b']);
  });

  test('DeleteObjects of several keys', async () => {
    const doomed = ['doomed/1', 'doomed/2', 'doomed/3'];
    await Promise.all(doomed.map((key) => put(key, key)));
    const res = await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: doomed.map((Key) => ({ Key })) } }));
    assert.deepEqual((res.Deleted ?? []).map((d) => d.Key).sort(), doomed);
    assert.equal(res.Errors, undefined);
    assert.deepEqual(await keys('doomed/'), []);
  });

  test('DeleteObjects is refused without the Content-MD5 middleware (why createS3Client adds it)', async () => {
    await put('kept', 'kept');
    const plain = new S3Client(config);
    try {
      await assert.rejects(plain.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: 'kept' }] } })), {
        name: 'InvalidRequest',
        message: /Content-MD5/,
      });
    } finally {
      plain.destroy();
    }
    assert.deepEqual(await keys('kept'), ['kept']);
  });

  test('AbortMultipartUpload removes it from ListMultipartUploads', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'abandoned' }));
    const uploadIds = async () =>
      ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'abandoned' }))).Uploads ?? []).map((u) => u.UploadId);
    assert.deepEqual(await uploadIds(), [UploadId]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'abandoned', UploadId }));
    assert.deepEqual(await uploadIds(), []);
  });

  test('@tus/s3-store: create, write two chunks, getUpload offset, remove', async () => {
    const store = new SwiftCompatibleS3Store({
      partSize: 5 * MiB,
      useTags: false, // Swift's s3api has no object tagging (501)
      s3ClientConfig: { ...config, bucket: BUCKET },
    });
    const id = 'tus-upload';
    const data = randomBytes(9 * MiB);
    await store.create(new Upload({ id, size: 10 * MiB, offset: 0, metadata: { filename: 'a.bin' } }));
    // 3 MiB stays below partSize: kept as the `<id>.part` object until the next chunk completes a part.
    let offset = await store.write(Readable.from([data.subarray(0, 3 * MiB)]), id, 0);
    assert.equal(offset, 3 * MiB);
    offset = await store.write(Readable.from([data.subarray(3 * MiB)]), id, offset);
    assert.equal(offset, 9 * MiB);

    // A fresh store has no cache: the offset comes from Swift (parts + incomplete part).
    const fresh = new SwiftCompatibleS3Store({ partSize: 5 * MiB, useTags: false, s3ClientConfig: { ...config, bucket: BUCKET } });
    const upload = await fresh.getUpload(id);
    assert.equal(upload.offset, 9 * MiB);
    assert.equal(upload.size, 10 * MiB);
    assert.deepEqual(await keys(id), [id + '.info', id + '.part']);

    await fresh.remove(id);
    // S3Store.remove aborts the multipart upload and deletes `<id>` and `<id>.info`, but leaves the
    // incomplete `<id>.part` behind: the storage backend's removeUpload must delete it itself.
    assert.deepEqual(await keys(id), [id + '.part']);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: id }));
    assert.equal(uploads.Uploads, undefined);
  });

  test('stop() leaves no process behind', async () => {
    const { pids } = swift;
    assert.equal(pids.length, 5); // memcached + account, container, object, proxy
    await swift.stop();
    const alive = pids.filter((pid) => existsSync(`/proc/${pid}`));
    assert.deepEqual(alive, []);
  });
});
