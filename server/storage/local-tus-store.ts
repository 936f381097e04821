// @tus/file-store with its upload info in SQLite (server/db/tus-info-repo.ts) instead of a `.json`
// beside each data file, and five changes:
// - create() makes the empty data file without a `mkdir -p` per upload: the uploads directory is
//   made at start (server/storage/local.ts) and again only when a creation finds it gone;
// - the descriptor create() opened is kept for the upload's first write, which a creation-with-upload
//   makes at once: one open and one close of the data file per upload instead of two of each
//   (the opens are among the largest costs of a small upload, bench/README.md). Kept briefly: a
//   creation without a body never writes, and a write that comes later opens the file itself;
// - write() reported every failure as a generic 500, so a full disk looked like a server bug. Here
//   ENOSPC/EDQUOT become 507 insufficient_storage (the client may resume once space returns), the
//   new offset is what actually reached the file, and a failed write ends only once its last bytes
//   are in the file;
// - remove() removes what is left of an upload instead of failing when part of it is gone;
// - it says whether an upload can be resumed at all (hooks/unresumable.ts).
import { close, createWriteStream, open, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS, type Upload } from '@tus/utils';
import type { TusInfoRepo } from '../db/tus-info-repo.ts';
import { diskFullError } from '../errors.ts';
import { isValidUploadId } from './keys.ts';

/**
 * How long create()'s descriptor waits for the first write. The write follows within the same
 * request (tus's PostHandler); past this the descriptor is closed and a write opens the file.
 */
const FRESH_DESCRIPTOR_MS = 1000;

export class LocalTusStore extends FileStore {
  readonly info: TusInfoRepo;
  /** Descriptors of data files just created, by upload id, until their first write takes them. */
  readonly #fresh = new Map<string, { fd: number; timer: NodeJS.Timeout }>();

  constructor(directory: string, info: TusInfoRepo) {
    super({ directory, configstore: info });
    this.info = info;
  }

  override async create(upload: Upload): Promise<Upload> {
    const data = this.#dataPath(upload.id);
    let fd: number;
    try {
      fd = await openEmpty(data);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // The uploads directory was removed while the server ran.
      await fs.mkdir(this.directory, { recursive: true });
      fd = await openEmpty(data);
    }
    try {
      // After the data file: a row always has its data file, unless the file is lost later.
      await this.info.set(upload.id, upload);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
    this.#keep(upload.id, fd);
    upload.storage = { type: 'file', path: data };
    return upload;
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    // Not an async function: a write may stream for hours, and a suspended frame would be kept
    // alive for as long (bench/README.md, "What a held PATCH keeps, object by object").
    let file: WriteStream;
    try {
      const data = this.#dataPath(id);
      // The stream closes the descriptor it is given when it ends or fails (autoClose).
      const fd = this.#take(id);
      file = createWriteStream(data, fd === undefined ? { flags: 'r+', start: offset } : { fd, start: offset });
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return pipeline(readable, file).then(
      () => offset + file.bytesWritten,
      (error: unknown) => failedWrite(file, error),
    );
  }

  /** Termination of an upload this server knows (routes/uploads.ts checks its row first). */
  override async remove(id: string): Promise<void> {
    this.release(id);
    await fs.rm(this.#dataPath(id), { force: true });
    await this.info.delete(id);
  }

  /** Both the data file and tus's info are there (without either, getUpload fails). */
  async isResumable(id: string): Promise<boolean> {
    if (!isValidUploadId(id) || !(await this.info.has(id))) return false;
    try {
      return (await fs.stat(this.#dataPath(id))).isFile();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  /** Closes the descriptor create() kept for `id`, if it is still unused (the upload is going). */
  release(id: string): void {
    const fd = this.#take(id);
    if (fd !== undefined) closeQuietly(fd);
  }

  #keep(id: string, fd: number): void {
    this.release(id); // a second creation of the same id (none expected): the newer descriptor wins
    const timer = setTimeout(() => this.release(id), FRESH_DESCRIPTOR_MS);
    timer.unref();
    this.#fresh.set(id, { fd, timer });
  }

  #take(id: string): number | undefined {
    const kept = this.#fresh.get(id);
    if (!kept) return undefined;
    this.#fresh.delete(id);
    clearTimeout(kept.timer);
    return kept.fd;
  }

  #dataPath(id: string): string {
    if (!isValidUploadId(id)) throw ERRORS.FILE_NOT_FOUND;
    return path.join(this.directory, id);
  }
}

/** The error a failed write ends with, once the file's last write is done. */
async function failedWrite(file: WriteStream, error: unknown): Promise<never> {
  // A failed pipeline rejects as soon as a stream errs (a client that cut its connection), while
  // the file's last write may still be on its way: the upload's offset is the file's size, so it
  // must not move after this write has ended. Once closed, it is final.
  if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
  const full = diskFullError(error, 'resume the upload later');
  if (full) throw full;
  if ((error as NodeJS.ErrnoException).code !== undefined) throw ERRORS.FILE_WRITE_ERROR;
  throw error;
}

/** An empty file at `file` (truncated if present), open for writing; no FileHandle. */
function openEmpty(file: string): Promise<number> {
  return new Promise((resolve, reject) => open(file, 'w', (error, fd) => (error ? reject(error) : resolve(fd))));
}

function closeQuietly(fd: number): void {
  close(fd, () => {});
}
