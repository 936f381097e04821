// Everything the app needs, built once from a Config: database, storage, secrets, auth, metrics,
// webhooks, virus scanning, the upload lifecycle and service. Each part gets what it needs when it
// is built; nothing is attached afterwards. This is where I/O happens at start-up; createApp
// itself does none.
import type { Locker } from '@tus/utils';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import { noScans } from './scan/queue.ts';
import { createClamd } from './scan/clamd.ts';
import { createScanWorker, type ScanWorker } from './scan/worker.ts';
import { createDispatcher, type Dispatcher } from './webhooks/dispatcher.ts';
import { createLifecycle, type HookDeps, type Lifecycle } from '../hooks/index.ts';
import type { AuthDeps } from './auth/caller.ts';
import { createUserTokenSigner, createUserTokenVerifier, type SignUserToken } from './auth/jwt.ts';
import { loadSecrets, type Secrets } from './auth/secrets.ts';
import { createSecretCheck } from './auth/secret-check.ts';
import type { Config } from './config.ts';
import { openDb, type Db } from './db/open.ts';
import type { Repository } from './db/contract.ts';
import { openRecords } from './db/records.ts';
import { startInstanceHeartbeat } from './instance-heartbeat.ts';
import { lifecycleObserver } from './lifecycle-metrics.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { heldThroughWrites } from './locker/held-through-writes.ts';
import { createLocalStorage } from './storage/local.ts';
import type { Storage } from './storage/types.ts';
import { UploadRequests } from './upload-requests.ts';
import { createUploadService, type UploadService } from './uploads/service.ts';

export interface Services {
  config: Readonly<Config>;
  log: Logger;
  now: () => number;
  /**
   * The SQLite database in DATA_DIR (tests and tools inspect it). With DATABASE_URL there is none,
   * and reading it throws: the records are in PostgreSQL, behind `repo`.
   */
  db: Db;
  /** Every record, behind the one asynchronous contract (server/db/contract.ts). */
  repo: Repository;
  storage: Storage;
  secrets: Secrets;
  /** The key that signs user tokens. */
  ownKey: JWK;
  /** Every own key that verifies user tokens (published at /.well-known/jwks.json). */
  ownKeys: JWK[];
  auth: AuthDeps;
  signUserToken: SignUserToken;
  metrics: Metrics;
  lifecycle: Lifecycle;
  /** Upload locks: per process on SQLite, shared through PostgreSQL with DATABASE_URL. */
  locker: Locker;
  /** What the upload routes call (server/uploads/service.ts). */
  uploads: UploadService;
  /** HMAC keys for signed links and batch tokens: the first signs, all verify. */
  signingKeys: Buffer[];
  /** The origin put into links and Location headers. */
  publicUrl: () => string;
  /** The webhook dispatcher (WEBHOOK_URLS set) of the repository's outbox; start.ts starts it. */
  webhooks: { dispatcher: Dispatcher } | undefined;
  /** Virus scanning (CLAMD_* set); started by start.ts after the start-up repair. */
  scanWorker: ScanWorker | undefined;
  /** Closes the locker and the database, once nothing uses them any more (start.ts, at shutdown). */
  close(): Promise<void>;
}

export interface ServiceOptions {
  now?: () => number;
  /**
   * The origin put into links and Location headers. Without PUBLIC_URL it is the address the server
   * binds, known only once it listens: start.ts passes a function that answers it from then on.
   */
  publicUrl?: () => string;
}

export async function createServices(config: Readonly<Config>, log: Logger, options: ServiceOptions = {}): Promise<Services> {
  const now = options.now ?? Date.now;
  const publicUrl = options.publicUrl ?? (() => config.publicUrl ?? `http://${config.host}:${config.port}`);
  const records = await openRecords(config, log);
  const storage = await createStorage(config, records.sqlite);
  const secrets = await loadSecrets(records.secrets, config, now);
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
  // The outbox wakes the dispatcher after each commit, and the dispatcher reads the outbox: the
  // repository gets a function that reaches the dispatcher, which exists before any event is emitted.
  let webhooks: Services['webhooks'];
  const repo = records.repository({ webhookUrls: config.webhooks?.urls ?? [], now, onEmit: () => webhooks?.dispatcher.wake() });
  const heartbeat = await startInstanceHeartbeat(repo.instances, records.instanceId, now, log);
  const metrics = createMetrics(async () => (await repo.knownUploadIds()).size);
  if (config.webhooks) {
    webhooks = { dispatcher: createDispatcher({ outbox: repo.outbox, config: config.webhooks, now, log, registry: metrics.registry }) };
  }
  const scanWorker = config.clamd
    ? createScanWorker({ repo, storage, clamd: createClamd(config.clamd), config: config.clamd, now, log, registry: metrics.registry })
    : undefined;
  const hookDeps: HookDeps = {
    repo,
    storage,
    quotaBytes: config.quotaBytes,
    maxUploadBytes: config.maxUploadBytes,
    maxUnfinishedUploads: config.uploadMaxUnfinishedPerUser,
    uploadExpirySeconds: config.uploadExpirySeconds,
    typePolicy: config.typePolicy,
    scans: scanWorker?.queue ?? noScans,
    now,
    log,
  };
  const locker = records.locker;
  const lifecycle = createLifecycle(hookDeps, {
    locker,
    requests: new UploadRequests(config.uploadMaxRequestsPerUser),
    observer: lifecycleObserver(metrics, log),
    instanceId: records.instanceId,
    liveOthers: heartbeat.liveOthers,
  });
  const uploads = createUploadService({
    lifecycle,
    // A cut request's write may outlive its tus handler: its lock is handed back once it is stored.
    locker: heldThroughWrites(locker, (id) => lifecycle.store.idle(id)),
    lockDrainTimeoutMs: records.lockDrainTimeoutMs,
    repo,
    maxUploadBytes: config.maxUploadBytes,
    bodyIdleTimeoutMs: config.uploadIdleTimeoutSeconds * 1000,
    uploadExpirySeconds: config.uploadExpirySeconds,
    publicUrl,
    dataDir: config.dataDir,
    now,
    log,
  });
  return {
    config,
    log,
    now,
    get db(): Db {
      if (!records.sqlite) throw new Error('no SQLite database: the records are in PostgreSQL (DATABASE_URL)');
      return records.sqlite;
    },
    repo,
    storage,
    secrets,
    ownKey: secrets.userTokenKey,
    ownKeys: secrets.userTokenKeys,
    auth,
    signUserToken: createUserTokenSigner(secrets.userTokenKey, now),
    metrics,
    lifecycle,
    locker,
    uploads,
    signingKeys: secrets.signingKeys.map((key) => Buffer.from(key, 'utf8')),
    publicUrl,
    webhooks,
    scanWorker,
    async close() {
      // Requests cut at shutdown may still be storing what they received (S3: the tail as `<id>.part`).
      await lifecycle.store.settled();
      await heartbeat.stop();
      await records.close();
    },
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
  return createS3Storage({
    bucket, endpoint, region, accessKeyId, secretAccessKey, forcePathStyle, maxUploadBytes: config.maxUploadBytes,
    sharedByInstances: config.databaseUrl !== undefined,
  });
}
