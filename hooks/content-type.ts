// Content checks: what a file really is, and whether this server takes it.
//
// The declared type (Upload-Metadata filetype) is the client's word; the detected one (file-type,
// from the magic numbers in the first bytes) is what a browser or another service would actually
// meet. Both are recorded; links serve the detected one when there is one.
//
// ALLOWED_TYPES / DENIED_TYPES refuse a file at the earliest point each fact is known:
//   - at creation: the declared type and the filename's extension (nothing is stored yet);
//   - as soon as the first SAMPLE_BYTES have arrived (or the whole upload, if smaller): the detected
//     type (hooks/type-sniffer.ts), so a disguised 1 GiB file is refused after 4 KiB, not at the end.
// Rules: a file is refused if its declared type, detected type or extension matches a denied entry.
// With type entries in ALLOWED_TYPES, the declared type must match one, and so must the detected type
// when the bytes match a signature; file-type recognises binary formats only, so a text file (plain
// text, CSV, HTML, SVG) is judged by its declared type. With extension entries in ALLOWED_TYPES, the
// extension must match one.
import { fileTypeFromBuffer } from 'file-type';
import { getMimeType } from 'hono/utils/mime';
import type { TypePolicy } from '../server/config.ts';
import type { Category } from '../server/db/repo.ts';
import { AppError } from '../server/errors.ts';
import { essence, extensionOf } from '../server/http/media-type.ts';
import type { Storage } from '../server/storage/types.ts';

/** file-type needs at most this many bytes (its documented "reasonable minimum sample size"). */
export const SAMPLE_BYTES = 4100;

const DOCUMENTS = new Set([
  'application/pdf', 'application/rtf', 'application/epub+zip', 'application/msword',
  'application/vnd.ms-excel', 'application/vnd.ms-powerpoint',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation', 'application/x-cfb',
  'text/plain', 'text/csv', 'text/markdown', 'application/json',
]);
const ARCHIVES = new Set([
  'application/zip', 'application/gzip', 'application/x-tar', 'application/x-bzip2', 'application/x-xz',
  'application/x-7z-compressed', 'application/x-rar-compressed', 'application/vnd.rar', 'application/zstd',
  'application/x-lzip', 'application/x-compress', 'application/x-lz4', 'application/java-archive',
  'application/x-iso9660-image', 'application/x-apple-diskimage', 'application/x-rpm', 'application/x-deb',
]);

export function categoryOf(mime: string | null): Category {
  if (mime === null) return 'other';
  const type = essence(mime);
  const top = type.split('/')[0];
  if (top === 'image' || top === 'video' || top === 'audio') return top;
  if (DOCUMENTS.has(type)) return 'document';
  if (ARCHIVES.has(type)) return 'archive';
  return 'other';
}

/**
 * The category of what the bytes are. file-type recognises binary formats only, so when it finds
 * nothing a textual declared type is believed (text/plain → document); a declared binary type is
 * not (a text file declared image/png is 'other').
 */
export function categoryFor(detected: string | null, declared: string): Category {
  if (detected !== null) return categoryOf(detected);
  const type = essence(declared);
  const textual = type.startsWith('text/') || type === 'application/json' || type.endsWith('+json') || type.endsWith('+xml') || type === 'application/xml';
  return textual ? categoryOf(type) : 'other';
}

/**
 * The media type a filename's extension names (hono's table), without parameters: a `charset`
 * there would be a guess about bytes nobody has read.
 */
export function typeFromExtension(filename: string): string | null {
  const type = getMimeType(filename);
  return type === undefined ? null : essence(type);
}

export async function detectType(head: Uint8Array): Promise<string | null> {
  if (head.length === 0) return null;
  return (await fileTypeFromBuffer(head))?.mime ?? null;
}

/** Detects a stored file's type from its first bytes, and checks it against the policy. */
export async function detectStoredFile(deps: { storage: Storage; typePolicy: TypePolicy }, file: { key: string; size: number }): Promise<string | null> {
  if (file.size === 0) return null;
  const stream = await deps.storage.openFile(file.key, { start: 0, end: Math.min(SAMPLE_BYTES, file.size) - 1 });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const detected = await detectType(Buffer.concat(chunks));
  checkDetected(deps.typePolicy, detected);
  return detected;
}

function matches(entry: string, value: string): boolean {
  if (entry.endsWith('/*')) return value.startsWith(entry.slice(0, -1));
  return entry === value;
}

const isExtensionEntry = (entry: string): boolean => entry.startsWith('.');

/** At creation: the declared type and the extension. */
export function checkDeclared(policy: TypePolicy, file: { contentType: string; filename: string }): void {
  const declared = essence(file.contentType);
  const extension = extensionOf(file.filename);
  for (const entry of policy.denied) {
    if (isExtensionEntry(entry) ? entry === extension : matches(entry, declared)) {
      throw refused(isExtensionEntry(entry) ? `files ending in ${extension}` : `files of type ${declared}`);
    }
  }
  const allowedTypes = policy.allowed.filter((e) => !isExtensionEntry(e));
  const allowedExtensions = policy.allowed.filter(isExtensionEntry);
  if (allowedTypes.length > 0 && !allowedTypes.some((e) => matches(e, declared))) {
    throw refused(`files of type ${declared}`);
  }
  if (allowedExtensions.length > 0 && !allowedExtensions.includes(extension)) {
    throw refused(extension === '' ? 'files without an extension' : `files ending in ${extension}`);
  }
}

/** Once the first bytes are known: the detected type (null = no signature matched). */
export function checkDetected(policy: TypePolicy, detected: string | null): void {
  if (detected === null) return;
  const type = essence(detected);
  const allowedTypes = policy.allowed.filter((e) => !isExtensionEntry(e));
  const denied = policy.denied.some((e) => !isExtensionEntry(e) && matches(e, type));
  if (denied || (allowedTypes.length > 0 && !allowedTypes.some((e) => matches(e, type)))) {
    throw refused(`files whose content is ${type}`, 'the content does not match what was declared');
  }
}

function refused(what: string, why?: string): AppError {
  return new AppError('type_not_allowed', `this server does not accept ${what}${why ? ` (${why})` : ''}`);
}
