// What a recorded filename and folder may be, one rule for every way a file gets its name: tus
// Upload-Metadata (hooks/metadata.ts) and the original API's init and complete (routes/legacy-uploads.ts).
import { AppError } from './errors.ts';

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
