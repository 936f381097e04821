// Records against stored bytes. A ready record promises `size` bytes at its key; when storage holds
// nothing there, or another number of bytes (a disk fault, an operator's mistake, a bucket edited
// behind the server's back), sending would either promise a Content-Length it cannot keep or
// answer a range from the wrong end. So every download compares first (docs/storage-check.md):
//   missing       → 410 file_missing (nothing will come back by retrying)
//   size_mismatch → 500 file_damaged (the server cannot send what it recorded)
// and the record is marked (files.damage): left out of listings, usage and batch archives, counted
// by sl_files_damaged_total and in /healthz, until the bytes match again or the record goes
// (npm run check-storage -- --repair).
import type { Logger } from 'pino';
import type { Repository } from '../db/contract.ts';
import type { FileDamage, FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';

export type { FileDamage } from '../db/repo.ts';

/** What is wrong with a record's bytes, given the size storage holds (null: nothing stored). */
export function damageOf(recordedSize: number, storedSize: number | null): FileDamage | null {
  if (storedSize === null) return 'missing';
  return storedSize === recordedSize ? null : 'size_mismatch';
}

export function damageError(damage: FileDamage): AppError {
  return damage === 'missing'
    ? new AppError('file_missing', 'the stored bytes of this file are gone; ask its owner to upload it again')
    : new AppError('file_damaged', 'the stored bytes of this file do not match its record; the operator has been told');
}

export interface DamageReporter {
  /** Marks the record (when it is still ready), counts and logs the first finding. */
  found(file: FileRow, damage: FileDamage, storedSize: number | null): Promise<void>;
  /** The bytes match again: the mark goes. */
  healed(file: FileRow): Promise<void>;
}

export function createDamageReporter(deps: { repo: Repository; metrics: Pick<Metrics, 'filesDamaged'>; log: Logger; now: () => number }): DamageReporter {
  return {
    async found(file, damage, storedSize) {
      // Bookkeeping beside an answer already decided: a database failure here is logged, never thrown.
      const marked = await deps.repo.markDamage(file.key, damage, deps.now()).catch((error: unknown) => {
        deps.log.warn({ err: error, key: file.key }, 'could not mark a damaged file');
        return false;
      });
      if (!marked) return;
      deps.metrics.filesDamaged.inc({ damage });
      deps.log.error(
        { event: 'file.damaged', key: file.key, user_id: file.user_id, damage, recorded_size: file.size, stored_size: storedSize },
        'stored bytes do not match the record (npm run check-storage)',
      );
    },
    async healed(file) {
      const cleared = await deps.repo.clearDamage(file.key).catch((error: unknown) => {
        deps.log.warn({ err: error, key: file.key }, 'could not clear the damage mark of a file');
        return false;
      });
      if (cleared) deps.log.info({ event: 'file.healed', key: file.key }, 'stored bytes match the record again');
    },
  };
}

/**
 * Checks a record against the size storage reported; throws what the client should see when they
 * differ. A record that left 'ready' meanwhile (deleted while this request ran) is simply gone.
 */
export async function assertIntact(repo: Repository, reporter: DamageReporter, file: FileRow, storedSize: number | null): Promise<void> {
  const damage = damageOf(file.size, storedSize);
  if (damage === null) {
    if (file.damage) await reporter.healed(file);
    return;
  }
  if ((await repo.getFile(file.key))?.state !== 'ready') throw new AppError('not_found', 'this file no longer exists');
  await reporter.found(file, damage, storedSize);
  throw damageError(damage);
}
