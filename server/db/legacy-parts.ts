// What the original API's compatibility routes (server/routes/legacy-uploads.ts) remember beyond
// the tus upload itself: the part being written to each upload, and which file an upload became.
import type { Db } from './open.ts';
import type { FileRow } from './repo.ts';

export interface LegacyPart {
  part_number: number;
  /** The upload's offset when this part began. */
  start: number;
  length: number;
}

export class LegacyParts {
  readonly #s;

  constructor(db: Db) {
    this.#s = {
      get: db.prepare<[string], LegacyPart>('SELECT part_number, start, length FROM legacy_parts WHERE upload_id = ?'),
      // Nothing is written once the upload row is gone (finished or discarded): the row would be orphaned.
      set: db.prepare<[string, number, number, number, string]>(
        `INSERT OR REPLACE INTO legacy_parts (upload_id, part_number, start, length)
         SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM uploads WHERE id = ?)`,
      ),
      fileOfUpload: db.prepare<[string], FileRow>("SELECT * FROM files WHERE upload_id = ? AND state = 'ready'"),
    };
  }

  get(uploadId: string): LegacyPart | undefined {
    return this.#s.get.get(uploadId);
  }

  set(uploadId: string, part: LegacyPart): void {
    this.#s.set.run(uploadId, part.part_number, part.start, part.length, uploadId);
  }

  /** The ready file a finished upload became. */
  fileOfUpload(uploadId: string): FileRow | undefined {
    return this.#s.fileOfUpload.get(uploadId);
  }
}
