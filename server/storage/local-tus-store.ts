// @tus/file-store with its upload info in SQLite (server/db/tus-info-repo.ts) instead of a `.json`
// beside each data file, and four changes:
// - create() makes the empty data file without a `mkdir -p` per upload: the uploads directory is
//   made at start (server/storage/local.ts) and again only when a creation finds it gone;
// - write() reported every failure as a generic 500, so a full disk looked like a server bug. Here
//   ENOSPC/EDQUOT become 507 insufficient_storage (the client may resume once space returns), and
//   the new offset is what actually reached the file;
// - remove() removes what is left of an upload instead of failing when part of it is gone;
// - it says whether an upload can be resumed at all (hooks/unresumable.ts).
import { close, createWriteStream, open } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS, type Upload } from '@tus/utils';
import type { TusInfoRepo } from '../db/tus-info-repo.ts';
import { diskFullError } from '../errors.ts';
import { isValidUploadId } from './keys.ts';

export class LocalTusStore extends FileStore {
  readonly info: TusInfoRepo;

  constructor(directory: string, info: TusInfoRepo) {
    super({ directory, configstore: info });
    this.info = info;
  }

  override async create(upload: Upload): Promise<Upload> {
    const data = this.#dataPath(upload.id);
    try {
      await createEmpty(data);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // The uploads directory was removed while the server ran.
      await fs.mkdir(this.directory, { recursive: true });
      await createEmpty(data);
    }
    // After the data file: a row always has its data file, unless the file is lost later.
    await this.info.set(upload.id, upload);
    upload.storage = { type: 'file', path: data };
    return upload;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const file = createWriteStream(this.#dataPath(id), { flags: 'r+', start: offset });
    try {
      await pipeline(readable, file);
    } catch (error) {
      const full = diskFullError(error, 'resume the upload later');
      if (full) throw full;
      if ((error as NodeJS.ErrnoException).code !== undefined) throw ERRORS.FILE_WRITE_ERROR;
      throw error;
    }
    return offset + file.bytesWritten;
  }

  /** Termination of an upload this server knows (routes/uploads.ts checks its row first). */
  override async remove(id: string): Promise<void> {
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

  #dataPath(id: string): string {
    if (!isValidUploadId(id)) throw ERRORS.FILE_NOT_FOUND;
    return path.join(this.directory, id);
  }
}

/** An empty file at `file` (truncated if present): one open and one close, no FileHandle. */
function createEmpty(file: string): Promise<void> {
  return new Promise((resolve, reject) =>
    open(file, 'w', (error, fd) => (error ? reject(error) : close(fd, (closeError) => (closeError ? reject(closeError) : resolve())))),
  );
}
