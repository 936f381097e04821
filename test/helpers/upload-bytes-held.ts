// How many bytes of an unfinished upload the server holds so far, read from where its storage keeps
// them, for either backend. Tests watch this rather than sending HEAD: a HEAD takes the upload's
// lock, and @tus/server asks the PATCH holding it to stop, so polling with HEAD would keep
// interrupting the upload it watches.
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import type { TestStorage } from './s3.ts';

/**
 * Sizes of @tus/s3-store's part files (`<10 random chars>-<n>`) in a server's temp directory: it
 * gathers each part of a PATCH in flight there before sending it to S3.
 */
export function partFiles(dir = os.tmpdir()): Map<string, number> {
  const files = new Map<string, number>();
  for (const name of readdirSync(dir)) {
    if (!/^[\w-]{10}-\d+$/.test(name)) continue;
    try {
      files.set(name, statSync(path.join(dir, name)).size);
    } catch {
      // removed after its upload meanwhile
    }
  }
  return files;
}

/**
 * Gives this test process (and so the servers it starts in-process) a temp directory of its own,
 * removed after the file's last test, so the part files in it are its servers' alone.
 */
export function ownTmpDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // Traversable by others: the file's PostgreSQL (run as user postgres) makes its data dir in here.
  chmodSync(dir, 0o711);
  process.env.TMPDIR = dir;
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface HeldIn {
  dataDir: string;
  storage: TestStorage;
  /**
   * The server's temp directory (S3): TMPDIR in a spawned server's env, os.tmpdir() for one in this
   * process. It must be the server's alone, as part files do not name their upload.
   */
  tmpDir?: string;
}

/**
 * On local disk the upload's file in DATA_DIR/uploads. On S3 the part files of the PATCH in flight
 * (the S3 server's parts are not counted: enough to wait for fewer bytes than one part, 8 MiB).
 */
export function uploadBytesHeld(server: HeldIn, uploadUrl: string): number {
  if (server.storage === 's3') {
    let sum = 0;
    for (const size of partFiles(server.tmpDir).values()) sum += size;
    return sum;
  }
  try {
    return statSync(path.join(server.dataDir, 'uploads', uploadUrl.split('/').pop()!)).size;
  } catch {
    return 0;
  }
}
