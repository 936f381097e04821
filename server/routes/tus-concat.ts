// The Upload-Concat header of tus's concatenation extension, and the creation of a final upload.
// tus 1.0 (concatenation): "Upload-Concat … MUST be set in both partial and final upload creation
// requests … final followed by a semicolon and a space-separated list of partial upload URLs that
// will be concatenated. The partial uploads URLs MAY be absolute or relative".
import { Metadata } from '@tus/utils';
import type { Caller } from '../auth/caller.ts';
import { AppError, tusErrorToAppError } from '../errors.ts';
import { isValidUploadId } from '../storage/keys.ts';
import { TUS_PATH } from '../tus.ts';
import { lenientMetadata } from '../tus-metadata-header.ts';
import type { UploadService } from '../uploads/service.ts';
import { toFileRecord } from './file-record.ts';

export type UploadConcat = { kind: 'partial' } | { kind: 'final'; partialIds: string[] };

/** null when absent; upload ids of the partial uploads a final one names. */
export function parseUploadConcat(header: string | null, base: string): UploadConcat | null {
  if (header === null) return null;
  const value = header.trim();
  if (value === 'partial') return { kind: 'partial' };
  if (!value.startsWith('final;')) throw new AppError('invalid_header', 'Upload-Concat must be "partial" or "final;<url> <url> …"');
  const urls = value.slice('final;'.length).trim().split(/\s+/).filter(Boolean);
  const partialIds = urls.map((url) => {
    let pathname: string;
    try {
      pathname = new URL(url, base).pathname;
    } catch {
      throw new AppError('invalid_header', `Upload-Concat names ${JSON.stringify(url)}, which is not a URL`);
    }
    const id = pathname.slice(pathname.lastIndexOf('/') + 1);
    if (!pathname.endsWith(`${TUS_PATH}/${id}`) || !isValidUploadId(id)) throw new AppError('not_found', `no such partial upload: ${url}`);
    return id;
  });
  return { kind: 'final', partialIds };
}

/** POST with Upload-Concat: final: the file is assembled and recorded before the answer. */
export async function createFinalUpload(uploads: UploadService, caller: Caller, request: Request, partialIds: string[], requestId: string): Promise<Response> {
  // Answered here rather than by @tus/server, so its version check is made here too (tus 1.0 §2.4).
  if (request.headers.get('tus-resumable') !== '1.0.0') throw tusErrorToAppError(412, 'Tus-Resumable Required');
  // "The Client MUST NOT include the Upload-Length header in the final upload creation."
  if (request.headers.has('upload-length')) throw new AppError('invalid_header', 'a final upload takes its length from its partial uploads: omit Upload-Length');
  if (request.headers.get('content-type') === 'application/offset+octet-stream') {
    throw new AppError('invalid_concatenation', 'a final upload carries no bytes of its own: send them in partial uploads');
  }
  const raw = lenientMetadata(request.headers).get('upload-metadata');
  let metadata: Record<string, string | null> | undefined;
  try {
    metadata = raw === null ? undefined : Metadata.parse(raw);
  } catch {
    throw new AppError('invalid_metadata', 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys');
  }
  const { id, file } = await uploads.concatenate({ caller, metadata, partialIds, requestId });
  return new Response(JSON.stringify(toFileRecord(file)), {
    status: 201,
    headers: {
      'Content-Type': 'application/json',
      Location: uploads.uploadUrl(id),
      'X-File-Key': file.key,
      'Upload-Offset': String(file.size),
      'Upload-Length': String(file.size),
    },
  });
}

/**
 * Concatenation is handled here, not by @tus/server 2.x: its store has no such extension, and it
 * answers any Upload-Concat with 501 (which clients retry as a server failure).
 */
export function withoutConcat(headers: Headers): Headers {
  if (!headers.has('upload-concat')) return headers;
  const copy = new Headers(headers);
  copy.delete('upload-concat');
  return copy;
}
