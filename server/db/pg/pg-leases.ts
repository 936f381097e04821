// Two small parts of the PostgreSQL repository: the leases of periodic jobs (one instance at a time
// runs the expiry sweep) and the original API's part records (server/db/legacy-parts.ts).
import type { FileRow } from '../repo.ts';
import type { JobLeases, LegacyPart, LegacyParts } from '../contract.ts';
import type { Sql } from './sql.ts';

export function createPgLeases(sql: Sql): JobLeases {
  return {
    // Taken when free, expired, or already ours (a renewal); one statement, so two instances
    // asking at once are serialized by the row.
    acquire: async (name, holder, now, leaseMs) =>
      (await sql.run(
        `INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
          WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4`,
        [name, holder, now + leaseMs, now])) > 0,
    release: async (name, holder) => void (await sql.run('DELETE FROM job_leases WHERE name = $1 AND holder = $2', [name, holder])),
  };
}

export function createPgLegacyParts(sql: Sql): LegacyParts {
  return {
    get: (uploadId) => sql.one<LegacyPart>('SELECT part_number, start, length FROM legacy_parts WHERE upload_id = $1', [uploadId]),
    async set(uploadId, part) {
      // Nothing is written once the upload row is gone (finished or discarded).
      await sql.run(
        `INSERT INTO legacy_parts (upload_id, part_number, start, length)
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM uploads WHERE id = $1)
         ON CONFLICT (upload_id) DO UPDATE SET part_number = excluded.part_number, start = excluded.start, length = excluded.length`,
        [uploadId, part.part_number, part.start, part.length],
      ).catch((error: { code?: string }) => {
        if (error.code !== '23503') throw error; // the upload went between the check and the insert
      });
    },
    fileOfUpload: (uploadId) => sql.one<FileRow>("SELECT * FROM files WHERE upload_id = $1 AND state = 'ready'", [uploadId]),
  };
}
