// Which files may be handed out while virus scanning is on: only those clamd called clean.
// An infected file is never served, scanning on or off (it stays quarantined: docs/operations.md "Virus scanning").
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';

export function assertServable(file: Pick<FileRow, 'key' | 'scan_status' | 'scan_signature'>, scanning: boolean): void {
  if (file.scan_status === 'infected') {
    throw new AppError('infected', `${file.key} is infected (${file.scan_signature ?? 'unknown signature'}) and is never served; its owner may delete it`);
  }
  if (!scanning || file.scan_status === 'clean') return;
  if (file.scan_status === 'error') throw new AppError('scan_failed', `${file.key} could not be scanned for viruses and is not served`);
  throw new AppError('scan_pending', `${file.key} is waiting for its virus scan; try again shortly`);
}
