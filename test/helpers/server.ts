// Real servers for tests: in-process on port 0 (startTestServer) or a child process running
// server/main.ts (spawnServer) for kill/restart tests. Each gets its own temp DATA_DIR, and with
// `storage: 's3'` its own bucket on the test file's Swift (test/helpers/s3.ts), kept across restarts
// on the same DATA_DIR. With TEST_DATABASE=postgres each also gets a database of its own on the
// test file's PostgreSQL, and S3 whatever storage it asked for (test/helpers/database.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../../server/config.ts';
import { createStorage } from '../../server/services.ts';
import { startServer, type RunningServer } from '../../server/start.ts';
import type { Storage } from '../../server/storage/types.ts';
import { databaseEnvFor, stopBeforeDatabase } from './database.ts';
import { storageEnvFor, type TestStorage } from './s3.ts';

export type { TestStorage } from './s3.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVICE_TOKEN = 'test-service-token-0123456789abcdef';

export function tempDir(prefix = 'sl-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestServer extends RunningServer {
  dataDir: string;
  storage: TestStorage;
  /** A finished file's bytes wherever the backend keeps them, or null. */
  readStored(key: string): Promise<Buffer | null>;
  /** Whether anything of an unfinished upload (bytes, tus bookkeeping) is left in storage. */
  hasUpload(uploadId: string): Promise<boolean>;
  /** An unfinished upload's stored bytes, or null where the backend cannot read them back (readUploadBytes). */
  uploadBytes(uploadId: string): Promise<Buffer | null>;
  serviceToken: string;
  token(userId: string, lifetimeSeconds?: number): Promise<string>;
  /** Closes the server; the data dir is kept when `keepData` (for a restart on the same dir). */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  dataDir?: string;
  now?: () => number;
  /** Default 'file'. A restart on the same dataDir keeps the first start's backend and bucket. */
  storage?: TestStorage;
  /** Default: silent (TEST_LOG_LEVEL). */
  log?: pino.Logger;
  /** false: tus requests through Hono's chain (server/upload-fast-path.ts). */
  uploadFastPath?: boolean;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  const config = loadConfig(await serverEnv(dataDir, options.storage ?? 'file', options.env ?? {}));
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const server = await startServer(config, { log, uploadFastPath: options.uploadFastPath, ...(options.now ? { now: options.now } : {}) });
  let stopping: Promise<void> | undefined;
  const forget = stopBeforeDatabase(() => server.close(1000));
  return {
    ...server,
    dataDir,
    storage: config.storage,
    readStored: (key) => readStored(server.services.storage, key),
    hasUpload: async (uploadId) => (await server.services.storage.listUploadIds()).includes(uploadId),
    uploadBytes: (uploadId) => readUploadBytes(server.services.storage, uploadId),
    serviceToken: SERVICE_TOKEN,
    async token(userId, lifetimeSeconds = 3600) {
      return (await server.services.signUserToken(userId, lifetimeSeconds)).token;
    },
    async stop({ keepData = false } = {}) {
      stopping ??= server.close(1000);
      await stopping;
      forget();
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SpawnedServer {
  url: string;
  pid: number;
  /** Where it stores: what was asked, or S3 on PostgreSQL (TEST_DATABASE=postgres). */
  storage: TestStorage;
  child: ChildProcess;
  output(): string;
  /** Sends the signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The environment of a test server on this DATA_DIR: its storage, its database (TEST_DATABASE), then
 * what the test asks for. A test that names its own DATABASE_URL gets no database from the helper.
 * Also for a tool run on a server's DATA_DIR (npm run check-storage), which must see what it sees.
 */
export async function serverEnv(dataDir: string, storage: TestStorage, env: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    AUTH_SERVICE_TOKEN: SERVICE_TOKEN,
    // Every test server checks what production does not (server/db/sqlite-gate.ts).
    STREAMLINE_DEV_CHECKS: 'true',
    ...(await storageEnvFor(dataDir, storage)),
    ...(env.DATABASE_URL === undefined ? await databaseEnvFor(dataDir) : {}),
    ...env,
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
  };
}

/** The storage a server on this DATA_DIR uses, opened from outside it (to inspect a spawned server). */
export async function openTestStorage(dataDir: string, kind: TestStorage = 'file'): Promise<Storage> {
  return createStorage(loadConfig({ ...(await storageEnvFor(dataDir, kind)), DATA_DIR: dataDir }));
}

export async function readStored(storage: Storage, key: string): Promise<Buffer | null> {
  if (!(await storage.statFile(key))) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.openFile(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Every byte an unfinished upload holds, read from storage: the whole file on local disk; on S3 only
 * while they are all in the unfinished tail (`<id>.part`), null once a part of it is completed (S3
 * cannot read those back). Not while a PATCH writes it.
 */
export async function readUploadBytes(storage: Storage, uploadId: string): Promise<Buffer | null> {
  const { offset } = await storage.tusStore.getUpload(uploadId);
  const stream = await storage.readUpload(uploadId, 0, offset);
  if (!stream) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The source through tsx, unless `entry` names a built main.js (test/repo/build.test.ts). */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}, storage: TestStorage = 'file', entry?: string): Promise<SpawnedServer> {
  const serverEnvironment = await serverEnv(dataDir, storage, env);
  const child = spawn(process.execPath, entry ? [entry] : ['--import', 'tsx', path.join(ROOT, 'server/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...serverEnvironment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const forget = stopBeforeDatabase(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  exited.then(forget);
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"listening"/.exec(out);
      if (match) {
        child.stdout!.off('data', onData);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
  return {
    url,
    pid: child.pid!,
    storage: serverEnvironment.STORAGE === 's3' ? 's3' : 'file',
    child,
    output: () => out,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
