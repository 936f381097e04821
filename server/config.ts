// Configuration: the environment variables of docs/configuration.md, parsed and validated in one place.
// loadConfig reports every bad variable at once (one line each) so an operator fixes them in one go.
import { isIP } from 'node:net';
import path from 'node:path';
import { databaseUrlProblems, parseDatabaseUrl } from './config-database-url.ts';

export const GiB = 1024 ** 3;

/**
 * Longest lifetime a link may be given, by SIGNED_URL_TTL_SECONDS or a request's `ttl`: a leaked
 * link must not stay useful for months.
 */
export const MAX_LINK_TTL_SECONDS = 7 * 24 * 3600;

/** Algorithms the server's own user-token key may use (AUTH_JWT_ALGORITHM; server/auth/secrets.ts makes the key). */
export const USER_TOKEN_ALGORITHMS = ['RS256', 'ES256'] as const;
export type UserTokenAlgorithm = (typeof USER_TOKEN_ALGORITHMS)[number];

export type StorageKind = 'file' | 's3';

export interface S3Config {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Origin used in links the server hands out; undefined means "http://HOST:<bound port>". */
  publicUrl: string | undefined;
  serviceTokens: string[] | undefined;
  /** AUTH_JWT_PUBLIC_KEY_BASE64, decoded: a PEM "BEGIN PUBLIC KEY" block. */
  jwtPublicKeyPem: string | undefined;
  jwksUrl: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  cookieName: string;
  signingKeys: string[] | undefined;
  quotaBytes: number;
  maxUploadBytes: number;
  signedUrlTtlSeconds: number;
  uploadExpirySeconds: number;
  corsOrigins: string[];
  storage: StorageKind;
  s3: S3Config | undefined;
  logLevel: string;
  /** Bound on in-flight requests at SIGTERM before connections are cut (uploads stay resumable). */
  shutdownGraceSeconds: number;
  /**
   * Shared with the reverse proxy, which adds it as `X-Edge-Secret` to every request it forwards:
   * only such requests have their X-Forwarded-For trusted and may be answered with a file for the
   * proxy to send (docs/operations.md). A client cannot forge it; the proxy overwrites the header.
   */
  edgeSecret: string | undefined;
  /** Let the proxy send signed-link bytes (local storage only); EDGE_OFFLOAD=false keeps Node sending. */
  edgeOffload: boolean;
  /** STREAMLINE_DEV_CHECKS: checks of the server's own code too costly for production (server/db/sqlite-gate.ts). */
  devChecks: boolean;
  /** Bearer token that may read /metrics from anywhere (without it: unproxied loopback only). */
  metricsToken: string | undefined;
  rateLimits: RateLimitConfig;
  /** ALLOWED_TYPES / DENIED_TYPES (hooks/content-type.ts); both empty = every type is accepted. */
  typePolicy: TypePolicy;
  /** clamd to scan every finished file with; undefined = scanning is off (server/scan/worker.ts). */
  clamd: ClamdConfig | undefined;
  /** Where events are POSTed; undefined = webhooks are off (server/webhooks/). */
  webhooks: WebhookConfig | undefined;
  /**
   * Peers (addresses or CIDRs) whose X-Forwarded-For is believed, as a request carrying EDGE_SECRET
   * is; a request from one of them is never taken for one from this machine (server/http/client-address.ts).
   */
  trustedProxies: string[];
  /** Largest request body outside tus (JSON APIs); larger ones are answered 413 before they are read. */
  bodyLimitBytes: number;
  /** Algorithm of the server's own user-token key (AUTH_JWT_ALGORITHM); see server/auth/secrets.ts. */
  jwtAlgorithm: UserTokenAlgorithm;
  /** Largest JSON body of the original API's init/part/complete (base64 parts): they are read whole. */
  legacyMaxBodyBytes: number;
  /** An upload request body with no byte for this long is ended; the bytes received are kept. */
  uploadIdleTimeoutSeconds: number;
  /** Upload requests (PATCH, POST) one user may have in flight at once; more answer 429. */
  uploadMaxRequestsPerUser: number;
  /** Unfinished uploads one user may hold; creating more answers 429. */
  uploadMaxUnfinishedPerUser: number;
  /** PostgreSQL shared by several instances (server/config-database-url.ts); undefined = SQLite in DATA_DIR. */
  databaseUrl: string | undefined;
}

/**
 * Entries of ALLOWED_TYPES / DENIED_TYPES, lower-cased: a media type (`image/png`), a whole top-level
 * type (`image/*`) or a file extension (`.exe`).
 */
export interface TypePolicy {
  allowed: string[];
  denied: string[];
}

export interface ClamdConfig {
  /** A Unix socket path, or a TCP host and port. */
  address: { socket: string } | { host: string; port: number };
  /** A connection that says nothing for this long is given up and the scan retried. */
  timeoutMs: number;
  /** Upper bound of the retry backoff while clamd is away. */
  maxBackoffMs: number;
}

export interface WebhookConfig {
  urls: string[];
  secret: string;
  /** One delivery attempt waits this long for a 2xx. */
  timeoutMs: number;
  /** Upper bound of the exponential retry backoff. */
  maxBackoffMs: number;
  /** A delivery still failing after this long is given up ('dead'), logged and counted. */
  giveUpMs: number;
}

/** Token buckets (server/http/rate-limit.ts): sustained rate per second and burst; rate 0 = off. */
export interface RateLimitConfig {
  /** Signed GETs and batch ZIP downloads per client address. */
  download: { ratePerSecond: number; burst: number };
  /** Requests per signed link or batch token, whoever sends them. */
  link: { ratePerSecond: number; burst: number };
  /** Failed authentications (401, and 403 on generate-token) per client address. */
  authFailure: { ratePerSecond: number; burst: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env, cwd = process.cwd()): Readonly<Config> {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };

  function integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return Number(raw);
  }

  function list(name: string): string[] | undefined {
    const raw = read(name);
    if (raw === undefined) return undefined;
    const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
    if (items.length === 0) problems.push(`${name}: expected a comma-separated list, got an empty one`);
    return items;
  }

  function url(name: string, { originOnly = false } = {}): string | undefined {
    const raw = read(name);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
      if (originOnly && parsed.pathname !== '/' ) {
        problems.push(`${name}: expected an origin such as https://files.example.com (no path), got ${JSON.stringify(raw)}`);
      }
      return originOnly ? parsed.origin : parsed.href;
    } catch {
      problems.push(`${name}: expected an http(s) URL, got ${JSON.stringify(raw)}`);
      return undefined;
    }
  }

  function bool(name: string, fallback: boolean): boolean {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes)$/i.test(raw)) return true;
    if (/^(0|false|no)$/i.test(raw)) return false;
    problems.push(`${name}: expected true or false, got ${JSON.stringify(raw)}`);
    return fallback;
  }

  const port = integer('PORT', 8080, 0, 65535);
  const host = read('HOST') ?? '127.0.0.1';
  const dataDir = path.resolve(cwd, read('DATA_DIR') ?? './data');
  const publicUrl = url('PUBLIC_URL', { originOnly: true });

  const serviceTokens = list('AUTH_SERVICE_TOKEN');
  for (const token of serviceTokens ?? []) {
    if (token.length < 16) {
      problems.push('AUTH_SERVICE_TOKEN: every token must be at least 16 characters long');
      break;
    }
  }
  const signingKeys = list('UPLOAD_SIGNING_KEY');
  for (const key of signingKeys ?? []) {
    if (key.length < 32) {
      problems.push('UPLOAD_SIGNING_KEY: every key must be at least 32 characters long');
      break;
    }
  }

  const jwtPublicKeyBase64 = read('AUTH_JWT_PUBLIC_KEY_BASE64');
  const jwtPublicKeyPem = jwtPublicKeyBase64 === undefined ? undefined : Buffer.from(jwtPublicKeyBase64, 'base64').toString('utf8');
  if (jwtPublicKeyPem !== undefined && !jwtPublicKeyPem.includes('-----BEGIN PUBLIC KEY-----')) {
    problems.push('AUTH_JWT_PUBLIC_KEY_BASE64: expected the base64 of a PEM "BEGIN PUBLIC KEY" block');
  }

  const cookieName = read('AUTH_COOKIE_NAME') ?? 'sl_token';
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) {
    problems.push(`AUTH_COOKIE_NAME: not a valid cookie name: ${JSON.stringify(cookieName)}`);
  }

  const quotaBytes = integer('QUOTA_DEFAULT_BYTES', 10 * GiB, 0);
  const maxUploadBytes = integer('MAX_UPLOAD_BYTES', quotaBytes, 1);

  const corsOrigins = (list('CORS_ORIGINS') ?? []).map((origin) => {
    if (origin === '*') return origin;
    try {
      const parsed = new URL(origin);
      if (parsed.origin !== origin.replace(/\/$/, '')) throw new Error('not an origin');
      return parsed.origin;
    } catch {
      problems.push(`CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin such as https://app.example.com`);
      return origin;
    }
  });

  const storageRaw = read('STORAGE') ?? 'file';
  let storage: StorageKind = 'file';
  if (storageRaw === 'file' || storageRaw === 's3') storage = storageRaw;
  else problems.push(`STORAGE: expected "file" or "s3", got ${JSON.stringify(storageRaw)}`);

  let s3: S3Config | undefined;
  if (storage === 's3') {
    const bucket = read('S3_BUCKET');
    if (bucket === undefined) problems.push('S3_BUCKET: required when STORAGE=s3');
    s3 = {
      bucket: bucket ?? '',
      endpoint: url('S3_ENDPOINT'),
      region: read('S3_REGION') ?? 'us-east-1',
      accessKeyId: read('S3_ACCESS_KEY_ID'),
      secretAccessKey: read('S3_SECRET_ACCESS_KEY'),
      forcePathStyle: bool('S3_FORCE_PATH_STYLE', false),
    };
    if ((s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
      problems.push('S3_ACCESS_KEY_ID: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together');
    }
  }

  const secret = (name: string, minLength: number): string | undefined => {
    const value = read(name);
    if (value !== undefined && value.length < minLength) problems.push(`${name}: must be at least ${minLength} characters long`);
    return value;
  };
  const authFailuresPerMinute = integer('RATE_LIMIT_AUTH_FAILURES_PER_MINUTE', 30, 0, 1_000_000);
  const rateLimits: RateLimitConfig = {
    download: { ratePerSecond: integer('RATE_LIMIT_DOWNLOAD_RPS', 20, 0, 1_000_000), burst: integer('RATE_LIMIT_DOWNLOAD_BURST', 200, 1, 10_000_000) },
    link: { ratePerSecond: integer('RATE_LIMIT_LINK_RPS', 10, 0, 1_000_000), burst: integer('RATE_LIMIT_LINK_BURST', 100, 1, 10_000_000) },
    authFailure: { ratePerSecond: authFailuresPerMinute / 60, burst: Math.max(1, authFailuresPerMinute) },
  };

  const typeEntries = (name: string): string[] =>
    (list(name) ?? []).map((entry) => {
      const lower = entry.toLowerCase();
      if (!/^(\.[a-z0-9][a-z0-9._+-]*|[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$/.test(lower)) {
        problems.push(`${name}: ${JSON.stringify(entry)} is not a media type (image/png), a type/* wildcard or an extension (.exe)`);
      }
      return lower;
    });
  const typePolicy: TypePolicy = { allowed: typeEntries('ALLOWED_TYPES'), denied: typeEntries('DENIED_TYPES') };

  let clamd: ClamdConfig | undefined;
  const clamdSocket = read('CLAMD_SOCKET');
  const clamdHost = read('CLAMD_HOST');
  const clamdPort = integer('CLAMD_PORT', 3310, 1, 65535);
  if (clamdSocket !== undefined && clamdHost !== undefined) {
    problems.push('CLAMD_SOCKET: set CLAMD_SOCKET or CLAMD_HOST/CLAMD_PORT, not both');
  } else if (clamdSocket !== undefined || clamdHost !== undefined || read('CLAMD_PORT') !== undefined) {
    clamd = {
      address: clamdSocket !== undefined ? { socket: clamdSocket } : { host: clamdHost ?? '127.0.0.1', port: clamdPort },
      timeoutMs: integer('CLAMD_TIMEOUT_SECONDS', 60, 1, 3600) * 1000,
      maxBackoffMs: integer('SCAN_RETRY_MAX_SECONDS', 300, 1, 86400) * 1000,
    };
  }

  let webhooks: WebhookConfig | undefined;
  const webhookUrls = list('WEBHOOK_URLS');
  if (webhookUrls !== undefined) {
    for (const raw of webhookUrls) {
      try {
        const parsed = new URL(raw);
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
      } catch {
        problems.push(`WEBHOOK_URLS: ${JSON.stringify(raw)} is not an http(s) URL`);
      }
    }
    const webhookSecret = secret('WEBHOOK_SECRET', 32);
    if (webhookSecret === undefined) problems.push('WEBHOOK_SECRET: required when WEBHOOK_URLS is set (at least 32 characters)');
    webhooks = {
      // One delivery per distinct URL (a URL listed twice would get every event twice).
      urls: [...new Set(webhookUrls)],
      secret: webhookSecret ?? '',
      timeoutMs: integer('WEBHOOK_TIMEOUT_SECONDS', 10, 1, 600) * 1000,
      maxBackoffMs: integer('WEBHOOK_RETRY_MAX_SECONDS', 600, 1, 86400) * 1000,
      giveUpMs: integer('WEBHOOK_GIVE_UP_HOURS', 72, 1, 24 * 365) * 3600 * 1000,
    };
  } else if (read('WEBHOOK_SECRET') !== undefined) {
    secret('WEBHOOK_SECRET', 32);
  }

  const trustedProxies = (list('TRUSTED_PROXIES') ?? []).map((entry) => {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits))) {
      problems.push(`TRUSTED_PROXIES: ${JSON.stringify(entry)} is not an address or CIDR such as 10.0.0.0/8 or ::1`);
    }
    return entry;
  });

  let databaseUrl: string | undefined;
  const databaseUrlRaw = read('DATABASE_URL');
  if (databaseUrlRaw !== undefined) {
    const parsed = parseDatabaseUrl(databaseUrlRaw);
    if ('problem' in parsed) problems.push(parsed.problem);
    else problems.push(...databaseUrlProblems(storage));
    databaseUrl = 'url' in parsed ? parsed.url : undefined;
  }

  const config: Config = {
    port,
    host,
    dataDir,
    publicUrl,
    serviceTokens,
    jwtPublicKeyPem,
    jwksUrl: url('AUTH_JWKS_URL'),
    jwtIssuer: read('AUTH_JWT_ISSUER'),
    jwtAudience: read('AUTH_JWT_AUDIENCE'),
    cookieName,
    signingKeys,
    quotaBytes,
    maxUploadBytes,
    signedUrlTtlSeconds: integer('SIGNED_URL_TTL_SECONDS', 3600, 1, MAX_LINK_TTL_SECONDS),
    uploadExpirySeconds: integer('UPLOAD_EXPIRY_SECONDS', 86400, 1),
    corsOrigins,
    storage,
    s3,
    logLevel: read('LOG_LEVEL') ?? 'info',
    shutdownGraceSeconds: integer('SHUTDOWN_GRACE_SECONDS', 10, 0, 3600),
    edgeSecret: secret('EDGE_SECRET', 32),
    edgeOffload: bool('EDGE_OFFLOAD', true),
    devChecks: bool('STREAMLINE_DEV_CHECKS', false),
    metricsToken: secret('METRICS_TOKEN', 16),
    rateLimits,
    typePolicy,
    clamd,
    webhooks,
    trustedProxies,
    bodyLimitBytes: integer('BODY_LIMIT_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    jwtAlgorithm: jwtAlgorithm(),
    legacyMaxBodyBytes: integer('LEGACY_API_MAX_BODY_BYTES', 64 * 1024 ** 2, 1024, GiB),
    uploadIdleTimeoutSeconds: integer('UPLOAD_IDLE_TIMEOUT_SECONDS', 60, 1, 24 * 3600),
    uploadMaxRequestsPerUser: integer('UPLOAD_MAX_REQUESTS_PER_USER', 64, 1, 1_000_000),
    uploadMaxUnfinishedPerUser: integer('UPLOAD_MAX_UNFINISHED_PER_USER', 1000, 1, 100_000_000),
    databaseUrl,
  };
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(config.logLevel)) {
    problems.push(`LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);

  function jwtAlgorithm(): UserTokenAlgorithm {
    const raw = read('AUTH_JWT_ALGORITHM') ?? 'RS256';
    const known = USER_TOKEN_ALGORITHMS.find((alg) => alg === raw.toUpperCase());
    if (!known) problems.push(`AUTH_JWT_ALGORITHM: expected ${USER_TOKEN_ALGORITHMS.join(' or ')}, got ${JSON.stringify(raw)}`);
    return known ?? 'RS256';
  }
}
