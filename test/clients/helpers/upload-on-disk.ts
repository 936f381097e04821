// How many bytes of an unfinished upload the server has stored, read from its DATA_DIR. Tests
// watch this rather than sending HEAD: a HEAD takes the upload's lock, and @tus/server asks the
// PATCH holding it to stop, so polling with HEAD would keep interrupting the upload it watches.
import { statSync } from 'node:fs';
import path from 'node:path';

export function uploadBytesOnDisk(dataDir: string, uploadUrl: string): number {
  try {
    return statSync(path.join(dataDir, 'uploads', uploadUrl.split('/').pop()!)).size;
  } catch {
    return 0;
  }
}
