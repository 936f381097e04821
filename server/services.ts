// Everything the app needs, built once from a Config: database, storage, secrets, auth, hooks, tus.
// This is where I/O happens at start-up; createApp itself does none.
import { MemoryLocker } from '@tus/server';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import { noEvents, noScans } from '../hooks/deps.ts';
import { createClamd } from './scan/clamd.ts';
import { createScanWorker, type ScanWorker } from './scan/worker.ts';
import { createOutbox, type Outbox } from './webhooks/outbox.ts';
import { createLifecycle, type HookDeps, type Lifecycle } from '../hooks/index.ts';
import type { AuthDeps } from './auth/caller.ts';
import { createUserTokenSigner, createUserTokenVerifier, type SignUserToken } from './auth/jwt.ts';
import { loadSecrets, type Secrets } from './auth/secrets.ts';
import { createSecretCheck } from './auth/secret-check.ts';
import type { Config } from './config.ts';
import { openDb, type Db } from './db/open.ts';
import { Repo } from './db/repo.ts';
import { createLocalStorage } from './storage/local.ts';
import type { Storage } from './storage/types.ts';
import { createTus, type Tus } from './tus.ts';
import { UploadRequests } from './upload-requests.ts';

export interface Services {
  config: Readonly<Config>;
  log: Logger;
  now: () => number;
  db: Db;
  repo: Repo;
  storage: Storage;
  secrets: Secrets;
  /** The key that signs user tokens. */
  ownKey: JWK;
  /** Every own key that verifies user tokens (published at /.well-known/jwks.json). */
  ownKeys: JWK[];
  auth: AuthDeps;
  signUserToken: SignUserToken;
  hookDeps: HookDeps;
  lifecycle: Lifecycle;
  /** Per-process upload locks (tus). Several instances need a shared locker instead. */
  locker: MemoryLocker;
  tus: Tus;
  /** HMAC keys for signed links and batch tokens: the first signs, all verify. */
  signingKeys: Buffer[];
  /** The origin put into links and Location headers; settled once the port is known. */
  publicUrl: { value: string };
  /** The webhook outbox (WEBHOOK_URLS set); `wake` is pointed at the dispatcher by start.ts. */
  webhooks: { outbox: Outbox; wake: () => void } | undefined;
  /** Virus scanning (CLAMD_* set); started by start.ts after the start-up repair. */
  scanWorker: ScanWorker | undefined;
}

export async function createServices(config: Readonly<Config>, log: Logger, now: () => number = Date.now): Promise<Services> {
  const db = openDb(config.dataDir);
  const repo = new Repo(db);
  const storage = await createStorage(config, db);
  const secrets = await loadSecrets(config.dataDir, config, now);
  const auth: AuthDeps = {
    verifyUserToken: createUserTokenVerifier({
      ownKeys: secrets.userTokenKeys,
      publicKeyPem: config.jwtPublicKeyPem,
      jwksUrl: config.jwksUrl,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
    }),
    checkServiceToken: createSecretCheck(secrets.serviceTokens),
    cookieName: config.cookieName,
  };
  let webhooks: Services['webhooks'];
  if (config.webhooks) {
    // onEmit runs after a commit, long after this assignment; start.ts points `wake` at the dispatcher.
    webhooks = { outbox: createOutbox(db, config.webhooks.urls, now, () => webhooks!.wake()), wake: () => {} };
  }
  const events = webhooks?.outbox ?? noEvents;
  const scanWorker = config.clamd
    ? createScanWorker({ db, repo, storage, clamd: createClamd(config.clamd), config: config.clamd, events, now, log })
    : undefined;
  const hookDeps: HookDeps = {
    repo,
    storage,
    quotaBytes: config.quotaBytes,
    maxUploadBytes: config.maxUploadBytes,
    maxUnfinishedUploads: config.uploadMaxUnfinishedPerUser,
    uploadExpirySeconds: config.uploadExpirySeconds,
    typePolicy: config.typePolicy,
    events,
    scans: scanWorker?.queue ?? noScans,
    now,
    log,
  };
  const locker = new MemoryLocker();
  const lifecycle = createLifecycle(hookDeps, locker, new UploadRequests(config.uploadMaxRequestsPerUser));
  const publicUrl = { value: config.publicUrl ?? `http://${config.host}:${config.port}` };
  const tus = createTus({
    store: storage.tusStore,
    locker,
    lifecycle,
    maxUploadBytes: config.maxUploadBytes,
    bodyIdleTimeoutMs: config.uploadIdleTimeoutSeconds * 1000,
    publicUrl: () => publicUrl.value,
    log,
    dataDir: config.dataDir,
  });
  return {
    config,
    log,
    now,
    db,
    repo,
    storage,
    secrets,
    ownKey: secrets.userTokenKey,
    ownKeys: secrets.userTokenKeys,
    auth,
    signUserToken: createUserTokenSigner(secrets.userTokenKey, now),
    hookDeps,
    lifecycle,
    locker,
    tus,
    signingKeys: secrets.signingKeys.map((key) => Buffer.from(key, 'utf8')),
    publicUrl,
    webhooks,
    scanWorker,
  };
}

/**
 * The configured backend. The S3 one is loaded only when chosen: @tus/s3-store and the AWS SDK
 * weigh tens of MiB of RSS that a file-storage server would carry for nothing (bench/README.md).
 */
export async function createStorage(config: Readonly<Config>, db?: Db): Promise<Storage> {
  // Local storage keeps tus's upload info in the database (a second connection when none is given).
  if (config.storage === 'file') return createLocalStorage(config.dataDir, db ?? openDb(config.dataDir));
  const { createS3Storage } = await import('./storage/s3.ts');
  if (!config.s3) throw new Error('STORAGE=s3 without S3 settings');
  const { bucket, endpoint, region, accessKeyId, secretAccessKey, forcePathStyle } = config.s3;
  return createS3Storage({ bucket, endpoint, region, accessKeyId, secretAccessKey, forcePathStyle, maxUploadBytes: config.maxUploadBytes });
}
