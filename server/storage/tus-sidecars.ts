// Data dirs written before tus's upload info moved into SQLite hold it as `<id>.json` beside each
// unfinished upload's data file. At start every such sidecar becomes a tus_uploads row and is then
// removed, so an upload created before the upgrade resumes after it (docs/operations.md). A crash
// between the two steps is harmless: the next start finds the row there and only removes the file.
// A sidecar that is not JSON was unreadable to tus as well; it is removed without a row, and
// the start-up check (hooks/unresumable.ts) releases its upload as it did before.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TusInfoRepo } from '../db/tus-info-repo.ts';
import { isValidUploadId } from './keys.ts';

const SUFFIX = '.json';

/** Moves every `<id>.json` under `uploadsDir` into `info`; returns how many it found. */
export async function importSidecars(uploadsDir: string, info: TusInfoRepo): Promise<number> {
  const names = await fs.readdir(uploadsDir);
  let found = 0;
  for (const name of names) {
    const id = name.slice(0, -SUFFIX.length);
    if (!name.endsWith(SUFFIX) || !isValidUploadId(id)) continue;
    const file = path.join(uploadsDir, name);
    const json = await fs.readFile(file, 'utf8');
    if (isJson(json)) await info.importJson(id, json);
    await fs.rm(file, { force: true });
    found++;
  }
  return found;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
