// The one place S3 clients are configured. Every setting here is what S3-compatible servers (tested
// against OpenStack Swift's s3api, see test/support/swift.ts) need and is harmless on AWS itself.
import { createHash } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

export interface S3ClientOptions {
  /** Omitted for AWS itself; `http://127.0.0.1:PORT` and the like for anything else. */
  endpoint?: string;
  region: string;
  /** Both omitted: the SDK's default credential chain (env, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `bucket.host` names need wildcard DNS that self-hosted servers rarely have. */
  forcePathStyle: boolean;
}

/** Plain config, for code that builds its own client (`@tus/s3-store`'s S3Store takes one). */
export function s3ClientConfig(cfg: S3ClientOptions): S3ClientConfig {
  const { endpoint, region, accessKeyId, secretAccessKey, forcePathStyle } = cfg;
  return {
    region,
    forcePathStyle,
    ...(endpoint ? { endpoint } : {}),
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
    // Since SDK 3.729 the default (WHEN_SUPPORTED) adds a CRC32 checksum to every upload, sending
    // stream bodies as `Content-Encoding: aws-chunked` with a trailing checksum; servers without
    // flexible-checksum support (Swift 2.30's s3api) answer 501. WHEN_REQUIRED keeps checksums for
    // the operations whose S3 spec requires one (DeleteObjects, see below) and streams plain bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    // The default validates a response checksum whenever one is returned, and asks for it on every
    // GetObject (x-amz-checksum-mode: ENABLED). Only validate when the caller asks for it; ranged
    // and S3-compatible reads have no whole-object checksum to check anyway.
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export function createS3Client(cfg: S3ClientOptions): S3Client {
  const client = new S3Client(s3ClientConfig(cfg));
  useContentMd5ForDeleteObjects(client);
  return client;
}

const CHECKSUM_HEADER = /^x-amz-(checksum-|sdk-checksum-algorithm$)/i;

/**
 * DeleteObjects is the one common operation whose body S3 requires a checksum for. The SDK now sends
 * CRC32 (`x-amz-checksum-crc32` + `x-amz-sdk-checksum-algorithm`), which AWS accepts, but older
 * servers only know the original requirement, `Content-MD5` (Swift 2.30's s3api answers 400
 * InvalidRequest "Missing required header for this request: Content-MD5"). Content-MD5 is valid on
 * AWS too. Exported for clients built elsewhere, e.g. S3Store's own.
 */
export function useContentMd5ForDeleteObjects(client: Pick<S3Client, 'middlewareStack'>): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const body = request.body;
      if (context.commandName === 'DeleteObjectsCommand' && request.headers && (typeof body === 'string' || body instanceof Uint8Array)) {
        for (const name of Object.keys(request.headers)) {
          if (CHECKSUM_HEADER.test(name)) delete request.headers[name];
        }
        request.headers['content-md5'] = createHash('md5').update(body).digest('base64');
      }
      return next(args);
    },
    // Build step, low priority: after the SDK's flexibleChecksumsMiddleware (build, normal) has added
    // its headers, before the request is signed (finalizeRequest).
    { step: 'build', priority: 'low', name: 'deleteObjectsContentMd5', override: true },
  );
}
