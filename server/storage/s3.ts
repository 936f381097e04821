// S3 storage: tus uploads through @tus/s3-store (a multipart upload at `<id>`, plus `<id>.info` and,
// between PATCHes, the unfinished tail in `<id>.part`), finished files at their key in the same bucket.
//
// Finishing copies the completed object to its key server-side and deletes the upload's objects. The
// key holds the completion date, which is unknown when the multipart upload (whose key is fixed at
// creation) starts, so some copy is unavoidable unless the key were not the object's name; measured
// on Swift here (bench/s3-upload.ts prints it), the copy is a small part of the upload itself.
// CopyObject stops at 5 GiB; larger objects are copied with UploadPartCopy, COPY_CONCURRENCY at a time.
// Crash safety (promote runs again after a crash, when the client's HEAD finishes the upload or the
// start-up repair does, hooks/repair.ts): a copy appears at its key only when it is complete
// (CopyObject and CompleteMultipartUpload are atomic), so "the key exists" means "the copy is
// done"; the clean-up that follows is idempotent, and stale multipart copies are aborted.
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, UploadPartCopyCommand, type S3,
} from '@aws-sdk/client-s3';
import type { MetadataValue } from '@tus/s3-store';
import type { KvStore } from '@tus/utils';
import { isValidUploadId, parseKey } from './keys.ts';
import { s3ClientConfig, type S3ClientOptions } from './s3-client.ts';
import { isNotFound, TusS3Store } from './s3-tus-store.ts';
import type { ByteRange, OpenedFile, Storage, StoredFile } from './types.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Every part boundary is a multiple of this (parts are 8 MiB × 2^k); hooks/sha256.ts checkpoints there. */
export const S3_CHECKPOINT_BYTES = 8 * MiB;
/** S3's CopyObject limit. */
const SINGLE_COPY_LIMIT = 5 * GiB;
const COPY_PART_BYTES = 512 * MiB;
const COPY_CONCURRENCY = 8;

export interface S3StorageOptions extends S3ClientOptions {
  bucket: string;
  /** The largest upload the server accepts: parts grow (8 MiB × 2^k) so it fits in 10,000 parts. */
  maxUploadBytes: number;
  /** Overrides the part size (a multiple of S3_CHECKPOINT_BYTES); tests and benchmarks. */
  partSize?: number;
  /**
   * Overrides the largest object moved with one CopyObject (5 GiB) and the range each UploadPartCopy
   * moves (512 MiB): tests drive the multipart copy with megabytes instead of gigabytes.
   */
  copy?: { singleLimit: number; partBytes: number };
  /**
   * Several instances serve the bucket: @tus/s3-store then keeps no upload metadata in memory. Its
   * default cache holds each upload's `.info` for the life of the process, and another instance
   * may change it meanwhile (a deferred length declared there) or finish and delete the upload.
   */
  sharedByInstances?: boolean;
}

/** A KvStore that keeps nothing: every read of an upload's metadata goes to the bucket. */
const NO_CACHE: KvStore<MetadataValue> = {
  get: async () => undefined,
  set: async () => {},
  delete: async () => {},
};

/** 8 MiB, doubled until `maxUploadBytes` fits in S3's 10,000 parts: boundaries stay on the 8 MiB grid. */
export function s3PartSize(maxUploadBytes: number): number {
  let size = S3_CHECKPOINT_BYTES;
  while (size * 10_000 < maxUploadBytes) size *= 2;
  return size;
}

export interface S3Storage extends Storage {
  readonly kind: 's3';
  readonly tusStore: TusS3Store;
  readonly client: S3;
  readonly bucket: string;
}

export function createS3Storage(options: S3StorageOptions): S3Storage {
  const partSize = options.partSize ?? s3PartSize(options.maxUploadBytes);
  if (partSize % S3_CHECKPOINT_BYTES !== 0) throw new Error(`S3 part size must be a multiple of ${S3_CHECKPOINT_BYTES}`);
  const bucket = options.bucket;
  const singleCopyLimit = options.copy?.singleLimit ?? SINGLE_COPY_LIMIT;
  const copyPartBytes = options.copy?.partBytes ?? COPY_PART_BYTES;
  const tusStore = new TusS3Store({
    partSize,
    // No object tagging on S3-compatible servers such as Swift (501); expiry is hooks/expiry.ts's job.
    useTags: false,
    ...(options.sharedByInstances ? { cache: NO_CACHE } : {}),
    s3ClientConfig: { ...s3ClientConfig(options), bucket },
  });
  const s3 = tusStore.s3;

  function fileKey(key: string): string {
    if (!parseKey(key)) throw new Error(`invalid file key ${JSON.stringify(key)}`);
    return key;
  }
  function uploadKey(uploadId: string): string {
    if (!isValidUploadId(uploadId)) throw new Error(`invalid upload id ${JSON.stringify(uploadId)}`);
    return uploadId;
  }

  async function head(key: string): Promise<StoredFile | null> {
    try {
      const res = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { size: res.ContentLength ?? 0, modifiedAt: res.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async function get(key: string, range?: ByteRange): Promise<Readable> {
    const opened = await getSized(key, range);
    if (!opened) throw Object.assign(new Error(`no object at ${key}`), { code: 'ENOENT' });
    return opened.body;
  }

  /** One GetObject: its body and the whole object's size (Content-Range's total, or the length). */
  async function getSized(key: string, range?: ByteRange): Promise<OpenedFile | null> {
    try {
      const res = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      const total = /\/(\d+)$/.exec(res.ContentRange ?? '')?.[1];
      return { body: res.Body as Readable, storedSize: total === undefined ? (res.ContentLength ?? 0) : Number(total) };
    } catch (error) {
      if (isNotFound(error)) return null;
      // A range that starts past the object's end: 416 InvalidRange, and the object is shorter.
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) {
        const stored = await head(key);
        return stored ? { body: Readable.from([]), storedSize: stored.size } : null;
      }
      throw error;
    }
  }

  /** Open multipart uploads whose key is exactly `key`. */
  async function openMultipartUploads(key: string): Promise<string[]> {
    const ids: string[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker, UploadIdMarker }));
      for (const upload of res.Uploads ?? []) if (upload.Key === key && upload.UploadId) ids.push(upload.UploadId);
      if (!res.IsTruncated) return ids;
      KeyMarker = res.NextKeyMarker;
      UploadIdMarker = res.NextUploadIdMarker;
    }
  }

  async function abortAll(key: string, known: string | null = null): Promise<void> {
    const ids = new Set(await openMultipartUploads(key));
    if (known) ids.add(known);
    for (const UploadId of ids) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
    }
  }

  async function deleteUploadObjects(uploadId: string): Promise<void> {
    const res = await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: [uploadId, `${uploadId}.info`, `${uploadId}.part`].map((Key) => ({ Key })), Quiet: true },
      }),
    );
    const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length > 0) throw new Error(`could not delete ${failed.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
    await tusStore.forget(uploadId);
  }

  async function copy(from: string, to: string, size: number): Promise<void> {
    const CopySource = `${bucket}/${from}`;
    if (size <= singleCopyLimit) {
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource }));
      return;
    }
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: to }));
    try {
      const count = Math.ceil(size / copyPartBytes);
      const etags: string[] = new Array(count);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const start = i * copyPartBytes;
          const end = Math.min(size, start + copyPartBytes) - 1;
          const res = await s3.send(
            new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId, PartNumber: i + 1, CopySource, CopySourceRange: `bytes=${start}-${end}` }),
          );
          etags[i] = res.CopyPartResult!.ETag!;
        }
      };
      await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, count) }, worker));
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket, Key: to, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
    } catch (error) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId })).catch(() => {});
      throw error;
    }
  }

  return {
    kind: 's3',
    tusStore,
    client: s3,
    bucket,
    digestCheckpointBytes: S3_CHECKPOINT_BYTES,

    async readUpload(uploadId, start, end) {
      const id = uploadKey(uploadId);
      if (end <= start) return Readable.from([]);
      // A completed multipart upload is an ordinary object: every byte can be read.
      const whole = await head(id);
      if (whole) return whole.size >= end ? get(id, { start, end: end - 1 }) : null;
      // Otherwise only the unfinished tail kept in `<id>.part` can; completed parts cannot.
      const inParts = await tusStore.partsBytes(id);
      if (inParts === null || start < inParts) return null;
      const tail = await tusStore.incompletePartBytes(id);
      if (end > inParts + tail) return null;
      return get(`${id}.part`, { start: start - inParts, end: end - inParts - 1 });
    },

    async listUploadIds() {
      const ids = new Set<string>();
      let ContinuationToken: string | undefined;
      do {
        // Delimiter '/': finished files (users/…) collapse into one common prefix.
        const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: '/', ContinuationToken }));
        for (const object of res.Contents ?? []) {
          const id = object.Key!.replace(/\.(info|part)$/, '');
          if (isValidUploadId(id)) ids.add(id);
        }
        ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (ContinuationToken);
      let KeyMarker: string | undefined;
      let UploadIdMarker: string | undefined;
      for (;;) {
        // A multipart upload whose `.info` was never written (a crash inside creation) is an orphan too.
        const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Delimiter: '/', KeyMarker, UploadIdMarker }));
        for (const upload of res.Uploads ?? []) if (upload.Key && isValidUploadId(upload.Key)) ids.add(upload.Key);
        if (!res.IsTruncated) break;
        KeyMarker = res.NextKeyMarker;
        UploadIdMarker = res.NextUploadIdMarker;
      }
      return [...ids];
    },

    async removeUpload(uploadId) {
      const id = uploadKey(uploadId);
      await tusStore.idle(id);
      // Abort first: S3Store.remove would skip the abort without `.info`, and leaves `.part` behind.
      await abortAll(id, await tusStore.multipartUploadId(id));
      await deleteUploadObjects(id);
    },

    async promote(uploadId, key) {
      const id = uploadKey(uploadId);
      const to = fileKey(key);
      if (!(await head(to))) {
        let source = await head(id);
        if (!source && (await tusStore.completeIfAllArrived(id))) source = await head(id);
        if (!source) throw Object.assign(new Error(`upload ${id} has no completed object to promote`), { code: 'ENOENT' });
        await copy(id, to, source.size);
      }
      // Stale multipart copies to `to` (a crash inside a large copy) and anything left of the upload.
      await abortAll(to);
      await abortAll(id);
      await deleteUploadObjects(id);
    },

    async statFile(key) {
      return head(fileKey(key));
    },

    async openFile(key, range) {
      return get(fileKey(key), range);
    },

    async openSized(key, range) {
      return getSized(fileKey(key), range);
    },

    async *listFiles() {
      let ContinuationToken: string | undefined;
      do {
        const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'users/', ContinuationToken }));
        for (const object of res.Contents ?? []) {
          yield { key: object.Key!, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) };
        }
        ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async removeFile(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: fileKey(key) }));
    },

    async health() {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    },
  };
}
