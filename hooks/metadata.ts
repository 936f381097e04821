// Creation step 1: Upload-Metadata becomes a validated object before anything is stored.
// Keys understood (docs/api.md, "Metadata"): filename, filetype, folder, sha256, user_id (service token only).
import type { Caller } from '../server/auth/caller.ts';
import { actingUser } from '../server/auth/caller.ts';
import { AppError } from '../server/errors.ts';
import { typeFromExtension } from './content-type.ts';

export interface UploadMetadata {
  userId: string;
  filename: string;
  folder: string;
  contentType: string;
  sha256: string | null;
}

// C0, DEL and C1 controls, the Unicode line/paragraph separators, and the bidi embeddings,
// overrides and isolates (U+202A–U+202E, U+2066–U+2069): never part of a name. The bidi controls
// reorder how a name is displayed ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"), and names are
// shown to other people (Content-Disposition, listings); right-to-left text needs none of them.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// Upload-Metadata values are base64 of UTF-8 (tus 1.0); @tus/server decodes invalid UTF-8 to U+FFFD,
// so its presence means the client sent bytes that are not text and the name cannot be kept as sent.
const NOT_UTF8 = '\ufffd';
const MAX_FILENAME_BYTES = 255;
const MAX_FOLDER_LENGTH = 512;
// RFC 9110 §8.3.1 media type: type "/" subtype, both tokens; parameters are kept if well formed.
const MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+=("[^"\\\u0000-\u001f]*"|[!#$%&'*+\-.^_`|~0-9A-Za-z]+))*$/;

export function parseUploadMetadata(raw: Record<string, string | null> | undefined, caller: Caller): UploadMetadata {
  const meta = raw ?? {};
  const value = (key: string): string | undefined => meta[key] ?? undefined;

  const requested = value('user_id');
  const userId = actingUser(caller, requested);

  const filename = sanitizeFilename(value('filename'));
  return {
    userId,
    filename,
    folder: sanitizeFolder(value('folder')),
    contentType: parseContentType(value('filetype'), filename),
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
  if (name.includes(NOT_UTF8)) throw new AppError('invalid_metadata', 'filename must be UTF-8 text');
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
  if (CONTROL.test(trimmed) || trimmed.includes('\\') || trimmed.includes(NOT_UTF8)) {
    throw new AppError('invalid_metadata', 'folder must be UTF-8 text without control characters or backslashes');
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

function parseContentType(type: string | undefined, filename: string): string {
  // Browsers send an empty type for files they do not recognise; the extension may still name one.
  if (type === undefined || type.trim() === '') return typeFromExtension(filename) ?? 'application/octet-stream';
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
