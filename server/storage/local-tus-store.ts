// @tus/file-store, with three changes: its write() reports every failure as a generic 500, so a
// full disk looked like a server bug. Here ENOSPC/EDQUOT become 507 insufficient_storage (the
// client may resume once space returns), and the new offset is what actually reached the file.
// Its remove() failed (404 or 500) when the data file or the `.json` was already gone; here it
// removes what is left. And it says whether an upload can be resumed at all (hooks/unresumable.ts).
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS } from '@tus/utils';
import { diskFullError } from '../errors.ts';
import { isValidUploadId } from './keys.ts';

export class LocalTusStore extends FileStore {
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    if (!isValidUploadId(id)) throw ERRORS.FILE_NOT_FOUND;
    const file = createWriteStream(path.join(this.directory, id), { flags: 'r+', start: offset });
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
    if (!isValidUploadId(id)) throw ERRORS.FILE_NOT_FOUND;
    const data = path.join(this.directory, id);
    await fs.rm(data, { force: true });
    await fs.rm(`${data}.json`, { force: true });
  }

  /** Both the data file and tus's `.json` are there (without either, getUpload fails). */
  async isResumable(id: string): Promise<boolean> {
    if (!isValidUploadId(id)) return false;
    const data = path.join(this.directory, id);
    return (await exists(data)) && (await exists(`${data}.json`));
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
