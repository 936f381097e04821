// @tus/s3-store's S3Store with the changes this server needs:
//  - every part but the last is exactly `partSize` bytes, whatever the upload's (possibly deferred)
//    length, so every offset S3 can hold durably (the end of a part) is a multiple of `partSize`;
//    hooks/sha256.ts saves its hash state there (unfinished multipart parts cannot be read back).
//    S3Store otherwise picks a part size from Upload-Length (550 MB while the length is deferred)
//    and uploads any trailing chunk of ≥ 5 MiB as a short part.
//  - a request body that breaks (the client closed, reset or half-closed its connection) ends the
//    stream S3Store reads instead of failing it, so what reached the store is kept: S3Store stores
//    the tail as `<id>.part` only when its stream ends, and on an error drops it — the bytes since
//    the last part, and the `.part` it had already taken in (docs/limits.md, "A connection that is
//    cut"). tus still fails the request: its own pipeline sees the body's error.
//  - DeleteObjects carries Content-MD5 (servers without flexible checksums refuse it, see s3-client.ts).
//  - a few of S3Store's protected steps, made reachable for server/storage/s3.ts.
import { finished, Transform, type Readable } from 'node:stream';
import type { S3 } from '@aws-sdk/client-s3';
import { S3Store, type Options } from '@tus/s3-store';
import { useContentMd5ForDeleteObjects } from './s3-client.ts';
import { WritesInFlight } from './writes-in-flight.ts';

const S3_MAX_PARTS = 10_000;

export class TusS3Store extends S3Store {
  readonly partSize: number;
  /**
   * Writes still storing, by upload: tus answers a request whose body broke before its write has
   * finished storing (server/storage/s3.ts's removal waits for it, or a `.part` would land after it).
   */
  readonly #writing = new WritesInFlight();

  constructor(options: Options & { partSize: number }) {
    // minPartSize = partSize: a PATCH that ends mid-part leaves its tail in `<id>.part` (read back and
    // prepended by the next PATCH) instead of uploading a short part.
    super({ ...options, minPartSize: options.partSize, maxMultipartParts: S3_MAX_PARTS });
    this.partSize = options.partSize;
    useContentMd5ForDeleteObjects(this.client);
  }

  get s3(): S3 {
    return this.client;
  }

  get bucketName(): string {
    return this.bucket;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const writing = (async () => {
      const size = (await this.getMetadata(id)).file.size;
      return super.write(endedWhenBroken(readable, size === undefined ? undefined : size - offset), id, offset);
    })();
    return this.#writing.track(id, writing);
  }

  /** Resolves once no write of the upload is storing. */
  idle(id: string): Promise<void> {
    return this.#writing.idle(id);
  }

  protected override calcOptimalPartSize(): number {
    return this.partSize;
  }

  /** The multipart upload id from `<id>.info`, or null when the info object is gone. */
  async multipartUploadId(id: string): Promise<string | null> {
    try {
      return (await this.getMetadata(id))['upload-id'] ?? null;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Bytes held in completed parts, or null when the multipart upload is no longer open. */
  async partsBytes(id: string): Promise<number | null> {
    try {
      const parts = await this.retrieveParts(id);
      return parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async incompletePartBytes(id: string): Promise<number> {
    return (await this.getIncompletePartSize(id)) ?? 0;
  }

  /**
   * Completes the multipart upload when every byte has arrived but CompleteMultipartUpload never ran:
   * a crash between the last part and the completion, or a zero-byte upload (tus writes nothing).
   * Returns false when the upload is not complete or not there.
   */
  async completeIfAllArrived(id: string): Promise<boolean> {
    let metadata;
    try {
      metadata = await this.getMetadata(id);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    const size = metadata.file.size;
    if (size === undefined) return false;
    let parts;
    try {
      parts = await this.retrieveParts(id);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    const received = parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    if (received !== size || (await this.getIncompletePartSize(id)) !== undefined) return false;
    await this.finishMultipartUpload(metadata, parts);
    return true;
  }

  /**
   * tus's `<id>.info` is there: everything else (parts, `.part`) can be missing or complete and the
   * upload still resumes or finishes, but without it S3Store knows nothing of the upload.
   */
  async isResumable(id: string): Promise<boolean> {
    try {
      await this.client.headObject({ Bucket: this.bucket, Key: `${id}.info` });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  forget(id: string): Promise<void> {
    return this.clearCache(id);
  }
}

/**
 * `source`'s bytes, ended (not failed) when `source` fails. The byte that would complete the upload
 * (`remaining`) is held back until `source` ends cleanly: a request whose body broke never completes
 * an upload, since tus then answers it as failed and never runs what follows the last byte.
 */
function endedWhenBroken(source: Readable, remaining: number | undefined): Readable {
  let received = 0;
  let held: Buffer | undefined;
  let broken = false;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received !== remaining || chunk.length === 0) return callback(null, chunk);
      held = chunk.subarray(chunk.length - 1);
      callback(null, chunk.subarray(0, chunk.length - 1));
    },
    flush(callback) {
      callback(null, broken ? undefined : held);
    },
  });
  finished(source, { writable: false }, (error) => {
    if (!error) return;
    broken = true;
    source.unpipe(body);
    body.end();
  });
  source.pipe(body);
  return body;
}

const NOT_FOUND = new Set(['NotFound', 'NoSuchKey', 'NoSuchUpload']);

export function isNotFound(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, Code } = error as { name?: unknown; Code?: unknown };
  return NOT_FOUND.has(name as string) || NOT_FOUND.has(Code as string);
}
