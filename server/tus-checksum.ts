// tus checksum extension: "Upload-Checksum: <algorithm> <base64 digest>" on a request that carries
// upload bytes. tus 1.0 (checksum): "If the checksums do not match, the Server MUST respond with the
// 460 Checksum Mismatch status and MUST NOT append the received data to the upload"; an algorithm
// it does not support "MUST" be answered with 400.
//
// The body is staged in a file beside the uploads while it is hashed, and handed to tus only once
// the digest matched. So refused bytes never reach the store, on any backend: no S3 part is
// committed, the offset stays, and the upload's running SHA-256 (hooks/sha256.ts) never sees them.
// A client that disconnects mid-body leaves nothing either: the bytes of a request whose checksum
// cannot be checked are not kept. Staging costs one extra write and read of the body, only for
// requests that ask for a checksum, and the append starts only once the body is in
// (bench/tus-extensions.ts measures it against a plain PATCH; figures in bench/README.md, "Figures behind choices in the code").
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, toAppError } from './errors.ts';

/** Advertised in Tus-Checksum-Algorithm, most preferred first (node:crypto names). */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { sha1: 20, md5: 16, sha256: 32 };

export interface UploadChecksum {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

/** The header as a checked value; null when absent. */
export function parseUploadChecksum(header: string | null): UploadChecksum | null {
  if (header === null) return null;
  const match = /^\s*([A-Za-z0-9-]+) +([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  if (!match) throw new AppError('invalid_header', 'Upload-Checksum must be "<algorithm> <base64 digest>"');
  const algorithm = match[1]!.toLowerCase();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new AppError('unsupported_checksum_algorithm', `supported checksum algorithms: ${CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  const digest = Buffer.from(match[2]!, 'base64');
  if (digest.length !== DIGEST_BYTES[algorithm as ChecksumAlgorithm]) {
    throw new AppError('invalid_header', `a ${algorithm} digest is ${DIGEST_BYTES[algorithm as ChecksumAlgorithm]} bytes, base64-encoded`);
  }
  return { algorithm: algorithm as ChecksumAlgorithm, digest };
}

export interface StagedBody {
  /** The verified bytes, for tus. */
  body: ReadableStream<Uint8Array>;
  size: number;
  remove(): Promise<void>;
}

export interface Staging {
  /**
   * Stores `source` (at most `limit` bytes) while hashing it; resolves with the verified body, or
   * throws checksum_mismatch (460) / upload_too_large (413) with nothing left behind.
   */
  stage(source: ReadableStream<Uint8Array> | null, checksum: UploadChecksum, limit: number): Promise<StagedBody>;
}

/** Staged bodies live in `dir`; whatever a crash left there is removed now. */
export function createStaging(dir: string): Staging {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return {
    async stage(source, checksum, limit) {
      const file = path.join(dir, randomBytes(12).toString('hex'));
      const hash = createHash(checksum.algorithm);
      let size = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          size += chunk.length;
          if (size > limit) return callback(new AppError('upload_too_large', `this request may carry at most ${limit} bytes`));
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      try {
        const input = source ? Readable.fromWeb(source as import('node:stream/web').ReadableStream) : Readable.from([]);
        await pipeline(input, tap, createWriteStream(file));
        const actual = hash.digest();
        if (!actual.equals(checksum.digest)) {
          throw new AppError(
            'checksum_mismatch',
            `Upload-Checksum ${checksum.algorithm} ${checksum.digest.toString('base64')} does not match the request body (${actual.toString('base64')}); none of its bytes were kept`,
          );
        }
      } catch (error) {
        await fs.rm(file, { force: true });
        if (error instanceof AppError) throw error;
        const known = toAppError(error); // a full disk
        if (known) throw known;
        if (isDisconnect(error)) {
          throw new AppError('bad_request', 'the request body ended before it could be verified; none of its bytes were kept');
        }
        throw error;
      }
      // Read as the range it holds: a read stream sizes each buffer by what is left, so a small body
      // costs a buffer of its size instead of 1 MiB, and no read past the end.
      const verified = createReadStream(file, size > 0 ? { end: size - 1, highWaterMark: 1024 * 1024 } : {});
      return {
        body: Readable.toWeb(verified) as ReadableStream<Uint8Array>,
        size,
        async remove() {
          // Its descriptor too, when tus answered without reading it (409, 413).
          verified.destroy();
          await fs.rm(file, { force: true });
        },
      };
    },
  };
}

function isDisconnect(error: unknown): boolean {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || name === 'AbortError';
}
