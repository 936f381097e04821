// File keys: `users/<user_id>/<yyyy>/<mm>/<dd>/<upload_id><.ext>` (docs/api.md, "Finishing").
// Every key the server accepts from outside is parsed here first; anything that does not have
// exactly this shape is "not found", so a key can never name a path outside its root.
import { isValidUserId } from '../user-id.ts';

const UPLOAD_ID = /^[0-9a-f]{32}$/;
const EXTENSION = /^\.[a-z0-9]{1,16}$/;
const KEY = /^users\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/([0-9a-f]{32})(\.[a-z0-9]{1,16})?$/;

export function isValidUploadId(value: string): boolean {
  return UPLOAD_ID.test(value);
}

/** Lower-cased extension of a (sanitized) filename, with its dot, or '' when it has none we keep. */
export function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  if (dot <= 0) return '';
  const ext = filename.slice(dot).toLowerCase();
  return EXTENSION.test(ext) ? ext : '';
}

export function fileKey(userId: string, completedAt: Date, uploadId: string, filename: string): string {
  const yyyy = String(completedAt.getUTCFullYear()).padStart(4, '0');
  const mm = String(completedAt.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(completedAt.getUTCDate()).padStart(2, '0');
  return `users/${userId}/${yyyy}/${mm}/${dd}/${uploadId}${extensionOf(filename)}`;
}

const DAY_MS = 86_400_000;

/**
 * Every key a finish of this upload may have moved its bytes to: the key's date is the UTC day the
 * finish began, which lies between `since` (the upload's last recorded activity) and `until`.
 */
export function fileKeysBetween(userId: string, uploadId: string, filename: string, since: number, until: number): string[] {
  const keys: string[] = [];
  for (let day = Math.floor(since / DAY_MS); day <= Math.floor(until / DAY_MS); day++) keys.push(fileKey(userId, new Date(day * DAY_MS), uploadId, filename));
  return keys;
}

export interface ParsedKey {
  userId: string;
  uploadId: string;
}

export function parseKey(key: string): ParsedKey | null {
  const match = KEY.exec(key);
  if (!match) return null;
  const userId = match[1]!;
  if (!isValidUserId(userId)) return null;
  return { userId, uploadId: match[5]! };
}
