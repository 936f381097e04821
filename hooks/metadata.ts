// Creation step 1: Upload-Metadata becomes a validated object before anything is stored.
// Keys understood (docs/api.md, "Metadata"): filename, filetype, folder, sha256, user_id (service token only).
import type { Caller } from '../server/auth/caller.ts';
import { actingUser } from '../server/auth/caller.ts';
import { AppError } from '../server/errors.ts';
import { sanitizeFilename, sanitizeFolder } from '../server/file-names.ts';
import { typeFromExtension } from './content-type.ts';

export interface UploadMetadata {
  userId: string;
  filename: string;
  folder: string;
  contentType: string;
  sha256: string | null;
}

// RFC 9110 §8.3.1 media type: type "/" subtype, both tokens; parameters are kept if well formed.
const MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+=("[^"\\\u0000-\u001f]*"|[!#$%&'*+\-.^_`|~0-9A-Za-z]+))*$/;

// tus's parser takes any ASCII but space and comma into a key, so "filename<TAB>base64" was one
// key without a value and the upload silently lost its name.
const CONTROL = /[\u0000-\u001f\u007f]/;

export function parseUploadMetadata(raw: Record<string, string | null> | undefined, caller: Caller): UploadMetadata {
  const meta = raw ?? {};
  for (const key of Object.keys(meta)) {
    if (CONTROL.test(key)) {
      throw new AppError('invalid_metadata', `Upload-Metadata key ${JSON.stringify(key)} holds a control character; a key and its value are separated by one space`);
    }
  }
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
