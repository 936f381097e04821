// Local disk storage: tus uploads under DATA_DIR/uploads (the data file; tus's info is a row of
// tus_uploads, server/db/tus-info-repo.ts), finished files under DATA_DIR/<key>. A rename moves a
// finished upload into place: one syscall, no copy, atomic.
//
// No `mkdir -p` per upload: the uploads directory is made here, once, and each key directory
// (users/<id>/yyyy/mm/dd) the first time a file goes there; a directory removed from under the
// server is made again when a rename into it fails with ENOENT.
import { createReadStream, fstat, open } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Db } from '../db/open.ts';
import { TusInfoRepo } from '../db/tus-info-repo.ts';
import { isValidUploadId, parseKey } from './keys.ts';
import { LocalTusStore } from './local-tus-store.ts';
import { importSidecars } from './tus-sidecars.ts';
import type { ByteRange, ListedFile, Storage, StoredFile } from './types.ts';

// 1 MiB reads: Node's default 64 KiB chunks cap a download well below what 1 MiB chunks reach, at
// more CPU (figures in bench/README.md, "Figures behind choices in the code").
const READ_CHUNK = 1024 * 1024;

/**
 * Key directories known to exist. One per user and day, so it is emptied when it reaches this size
 * rather than grow with the server's age: forgetting costs one `mkdir -p` per directory.
 */
const KNOWN_DIRS_MAX = 10_000;

export async function createLocalStorage(dataDir: string, db: Db): Promise<Storage> {
  const uploadsDir = path.join(dataDir, 'uploads');
  await fs.mkdir(uploadsDir, { recursive: true });
  const info = new TusInfoRepo(db);
  await importSidecars(uploadsDir, info);
  // expirationPeriodInMilliseconds stays 0: @tus/file-store counts expiry from creation, while this
  // server expires uploads by idleness (hooks/expiry.ts) and sets Upload-Expires itself.
  const tusStore = new LocalTusStore(uploadsDir, info);
  const knownDirs = new Set<string>();

  async function makeDir(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
    if (knownDirs.size >= KNOWN_DIRS_MAX) knownDirs.clear();
    knownDirs.add(dir);
  }

  function uploadPath(uploadId: string): string {
    if (!isValidUploadId(uploadId)) throw new Error(`invalid upload id ${JSON.stringify(uploadId)}`);
    return path.join(uploadsDir, uploadId);
  }

  function filePath(key: string): string {
    // parseKey admits only users/<id>/<yyyy>/<mm>/<dd>/<hex>[.ext]: no '..', no absolute paths.
    if (!parseKey(key)) throw new Error(`invalid file key ${JSON.stringify(key)}`);
    return path.join(dataDir, key);
  }

  async function unlinkIfPresent(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  return {
    kind: 'file',
    tusStore,

    digestCheckpointBytes: null,

    async readUpload(uploadId, start, end) {
      if (end <= start) return Readable.from([]);
      return createReadStream(uploadPath(uploadId), { start, end: end - 1, highWaterMark: READ_CHUNK });
    },

    async listUploadIds() {
      const names = await fs.readdir(uploadsDir).catch(() => [] as string[]);
      const ids = new Set(await info.list());
      for (const name of names) if (isValidUploadId(name)) ids.add(name);
      return [...ids];
    },

    async removeUpload(uploadId) {
      tusStore.release(uploadId);
      await unlinkIfPresent(uploadPath(uploadId));
      await info.delete(uploadId);
    },

    async promote(uploadId, key) {
      tusStore.release(uploadId); // an upload finished without a write (0 bytes): its bytes are all there
      const from = uploadPath(uploadId);
      const to = filePath(key);
      const dir = path.dirname(to);
      if (!knownDirs.has(dir)) await makeDir(dir);
      try {
        await fs.rename(from, to);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        // Already moved by an earlier, interrupted commit: finishing the cleanup is all that is left.
        // Otherwise, with the upload still there, its key directory went since it was made.
        if (!(await exists(to))) {
          if (!(await exists(from))) throw error;
          await makeDir(dir);
          await fs.rename(from, to);
        }
      }
      info.forget(uploadId);
    },

    async statFile(key) {
      try {
        const stat = await fs.stat(filePath(key));
        return stat.isFile() ? ({ size: stat.size, modifiedAt: stat.mtime } satisfies StoredFile) : null;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },

    async openFile(key: string, range?: ByteRange): Promise<Readable> {
      const options = range ? { start: range.start, end: range.end } : {};
      const stream = createReadStream(filePath(key), { ...options, highWaterMark: READ_CHUNK });
      // Surface ENOENT/EACCES before the caller commits to a status line.
      await new Promise<void>((resolve, reject) => {
        stream.once('open', () => resolve());
        stream.once('error', reject);
      });
      return stream;
    },

    async openSized(key, range) {
      const fd = await new Promise<number | null>((resolve, reject) =>
        open(filePath(key), 'r', (error, fd) => (error ? (error.code === 'ENOENT' ? resolve(null) : reject(error)) : resolve(fd))),
      );
      if (fd === null) return null;
      // fstat on the descriptor that will be read: the size of exactly the bytes this request sends.
      const storedSize = await new Promise<number>((resolve, reject) => fstat(fd, (error, stat) => (error ? reject(error) : resolve(stat.size))));
      const body = createReadStream(filePath(key), { fd, ...(range ? { start: range.start, end: range.end } : {}), highWaterMark: READ_CHUNK });
      return { body, storedSize };
    },

    async *listFiles() {
      yield* walkFiles(dataDir, 'users');
    },

    async removeFile(key) {
      await unlinkIfPresent(filePath(key));
    },

    async health() {
      await fs.mkdir(uploadsDir, { recursive: true });
      await fs.access(uploadsDir, fs.constants.R_OK | fs.constants.W_OK);
      await fs.access(dataDir, fs.constants.R_OK | fs.constants.W_OK);
    },
  };
}

/** Regular files under `<dataDir>/<dir>`, depth first, as keys relative to dataDir. */
async function* walkFiles(dataDir: string, dir: string): AsyncGenerator<ListedFile> {
  const entries = await fs.readdir(path.join(dataDir, dir), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const key = `${dir}/${entry.name}`;
    if (entry.isDirectory()) yield* walkFiles(dataDir, key);
    else if (entry.isFile()) {
      const stat = await fs.stat(path.join(dataDir, key)).catch(() => null);
      if (stat) yield { key, size: stat.size, modifiedAt: stat.mtime };
    }
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, () => false);
}
