// Which files may leave the server, by their scan verdict (README "Virus scanning").
//
// While scanning is on, only 'clean' files are served: 'pending'/'scanning' (and a file without a
// verdict) answer 409 scan_pending with Retry-After, 'error' 403 scan_failed. An 'infected' file is
// quarantined: 403 infected whether scanning is on or off — turning clamd off must not release
// what it found. With scanning off, everything else is served as before.
//
// Sharing (minting a signed URL, creating a batch link) refuses only what can never be served
// (infected, and scan_failed while scanning is on); a link made while the file waits for its scan
// works once the file is clean.
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';

export type ScanGateUse = 'serve' | 'share';

/** Why `file` may not be served (or shared), or null. `about` prefixes the detail (e.g. the owner's key). */
export function scanRefusal(
  file: Pick<FileRow, 'scan_status' | 'scan_signature'>,
  scanning: boolean,
  use: ScanGateUse,
  about = 'this file',
): AppError | null {
  if (file.scan_status === 'infected') {
    return new AppError('infected', `${about} is quarantined: the virus scanner found ${file.scan_signature ?? 'a threat'}`);
  }
  if (!scanning || file.scan_status === 'clean') return null;
  if (file.scan_status === 'error') {
    return new AppError('scan_failed', `${about} could not be checked by the virus scanner, so it is not served`);
  }
  return use === 'share' ? null : new AppError('scan_pending', `${about} has not been checked by the virus scanner yet; retry later`);
}

/** Throws the refusal, if any. */
export function assertScanAllows(file: Pick<FileRow, 'scan_status' | 'scan_signature'>, scanning: boolean, use: ScanGateUse, about?: string): void {
  const refusal = scanRefusal(file, scanning, use, about);
  if (refusal) throw refusal;
}
