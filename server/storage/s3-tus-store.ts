// @tus/s3-store's S3Store with the changes this server needs:
//  - every part but the last is exactly `partSize` bytes, whatever the upload's (possibly deferred)
//    length, so every offset S3 can hold durably (the end of a part) is a multiple of `partSize`;
//    hooks/sha256.ts saves its hash state there (unfinished multipart parts cannot be read back).
//    S3Store otherwise picks a part size from Upload-Length (550 MB while the length is deferred)
//    and uploads any trailing chunk of ≥ 5 MiB as a short part.
//  - DeleteObjects carries Content-MD5 (servers without flexible checksums refuse it, see s3-client.ts).
//  - a few of S3Store's protected steps, made reachable for server/storage/s3.ts.
import type { S3 } from '@aws-sdk/client-s3';
import { S3Store, type Options } from '@tus/s3-store';
import { useContentMd5ForDeleteObjects } from './s3-client.ts';

const S3_MAX_PARTS = 10_000;

export class TusS3Store extends S3Store {
  readonly partSize: number;

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

const NOT_FOUND = new Set(['NotFound', 'NoSuchKey', 'NoSuchUpload']);

export function isNotFound(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, Code } = error as { name?: unknown; Code?: unknown };
  return NOT_FOUND.has(name as string) || NOT_FOUND.has(Code as string);
}
