// Creation step 1: Upload-Metadata becomes a validated object before anything is stored.
// Keys understood (SPEC): filename, filetype, folder, sha256, user_id (service token only).
import type { Caller } from '../server/auth/caller.ts';
import { actingUser } from '../server/auth/caller.ts';
import { AppError } from '../server/errors.ts';

export interface UploadMetadata {
  userId: string;
  filename: string;
  folder: string;
  contentType: string;
  sha256: string | null;
}

// C0, DEL and C1 controls, plus the Unicode line/paragraph separators: never part of a name.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const MAX_FILENAME_BYTES = 255;
const MAX_FOLDER_LENGTH = 512;
// RFC 9110 §8.3.1 media type: type "/" subtype, both tokens; parameters are kept if well formed.
const MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+=("[^"\\\u0000-\u001f]*"|[!#$%&'*+\-.^_`|~0-9A-Za-z]+))*$/;

export function parseUploadMetadata(raw: Record<string, string | null> | undefined, caller: Caller): UploadMetadata {
  const meta = raw ?? {};
  const value = (key: string): string | undefined => meta[key] ?? undefined;

  const requested = value('user_id');
  const userId = actingUser(caller, requested);

  return {
    userId,
    filename: sanitizeFilename(value('filename')),
    folder: sanitizeFolder(value('folder')),
    contentType: parseContentType(value('filetype')),
    sha256: parseSha256(value('sha256')),
  };
}

/**
 * The recorded filename is the last path segment of what the client sent (browsers and some
 * clients send full paths; `../../etc/passwd` becomes `passwd`). It never reaches the file system:
 * the stored name is the upload id plus a checked extension.
 */
export function sanitizeFilename(name: string | undefined): string {
  if (name === undefined || name === '') return 'file';
  if (CONTROL.test(name)) throw new AppError('invalid_metadata', 'filename must not contain control characters');
  const last = name.split(/[\\/]/).pop()!.trim();
  if (last === '' || last === '.' || last === '..') {
    throw new AppError('invalid_metadata', 'filename must name a file, not a directory');
  }
  if (Buffer.byteLength(last, 'utf8') > MAX_FILENAME_BYTES) {
    throw new AppError('invalid_metadata', `filename must be at most ${MAX_FILENAME_BYTES} bytes`);
  }
  return last;
}

/** A logical folder such as `main/pictures`: slash-separated, no empty, `.` or `..` segments. */
export function sanitizeFolder(folder: string | undefined): string {
  if (folder === undefined) return '';
  const trimmed = folder.trim().replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  if (CONTROL.test(trimmed) || trimmed.includes('\\')) {
    throw new AppError('invalid_metadata', 'folder must not contain control characters or backslashes');
  }
  if (trimmed.length > MAX_FOLDER_LENGTH) {
    throw new AppError('invalid_metadata', `folder must be at most ${MAX_FOLDER_LENGTH} characters`);
  }
  const segments = trimmed.split('/').map((s) => s.trim());
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new AppError('invalid_metadata', 'folder segments must not be empty, "." or ".."');
  }
  return segments.join('/');
}

function parseContentType(type: string | undefined): string {
  // Browsers send an empty type for files they do not recognise.
  if (type === undefined || type.trim() === '') return 'application/octet-stream';
  const trimmed = type.trim();
  if (trimmed.length > 255 || !MEDIA_TYPE.test(trimmed)) {
    throw new AppError('invalid_metadata', 'filetype must be a media type such as image/png');
  }
  return trimmed.toLowerCase();
}

function parseSha256(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  if (!/^[0-9a-fA-F]{64}$/.test(value)) {
    throw new AppError('invalid_metadata', 'sha256 must be 64 hexadecimal characters');
  }
  return value.toLowerCase();
}
