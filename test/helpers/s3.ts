// The storage backend end-to-end tests run on: TEST_STORAGE=file (default) or s3. On s3, one Swift
// per test file (test/support/swift.ts) is started on first use and stopped when the file's tests end;
// every server gets a bucket of its own, so tests in one file never see each other's objects.
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../server/storage/s3-client.ts';
import { startSwift, type SwiftServer } from '../support/swift.ts';
import { databaseUnderTest } from './database.ts';

export type TestStorage = 'file' | 's3';

/**
 * The backends the parametrized end-to-end files run on: both by default (CI), or the one named by
 * TEST_STORAGE=file|s3 (a quicker local run). On PostgreSQL (TEST_DATABASE=postgres) only S3: the
 * server refuses local disk beside a shared database (test/helpers/database.ts).
 */
export function backendsUnderTest(): TestStorage[] {
  if (databaseUnderTest() === 'postgres') return ['s3'];
  const only = process.env.TEST_STORAGE;
  return only === 'file' || only === 's3' ? [only] : ['file', 's3'];
}

let swift: Promise<SwiftServer> | undefined;
// Registered when a test file imports this module: after that file's last test.
after(async () => {
  await (await swift?.catch(() => undefined))?.stop();
});

/** The file's Swift, started on first call and stopped after the file's last test. */
export function sharedSwift(): Promise<SwiftServer> {
  swift ??= startSwift();
  return swift;
}

export interface TestBucket {
  bucket: string;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: true;
  /** The S3 variables (docs/configuration.md) for a server that stores in this bucket. */
  env: Record<string, string>;
}

/** A new, empty bucket on the file's Swift. */
export async function createTestBucket(): Promise<TestBucket> {
  const server = await sharedSwift();
  const bucket = `t-${randomBytes(6).toString('hex')}`;
  const client = createS3Client({ ...server, forcePathStyle: true });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return {
    bucket,
    endpoint: server.endpoint,
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    env: {
      STORAGE: 's3',
      S3_BUCKET: bucket,
      S3_ENDPOINT: server.endpoint,
      S3_REGION: server.region,
      S3_ACCESS_KEY_ID: server.accessKeyId,
      S3_SECRET_ACCESS_KEY: server.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    },
  };
}

const bucketsByDataDir = new Map<string, Promise<Record<string, string>>>();

/**
 * Environment for a server on `kind` with this DATA_DIR: nothing for file; for s3 a fresh bucket,
 * and the same bucket again whenever a server restarts on that DATA_DIR. On PostgreSQL every
 * server is on S3, whatever it asked for.
 */
export function storageEnvFor(dataDir: string, kind: TestStorage): Promise<Record<string, string>> {
  const known = bucketsByDataDir.get(dataDir);
  if (known) return known;
  if (kind === 'file' && databaseUnderTest() === 'sqlite') return Promise.resolve({});
  const env = createTestBucket().then((bucket) => bucket.env);
  bucketsByDataDir.set(dataDir, env);
  return env;
}
