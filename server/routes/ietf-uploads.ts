// The IETF "Resumable Uploads for HTTP" draft (draft-ietf-httpbis-resumable-upload) as tus-js-client
// 4 speaks it: `protocol: 'ietf-draft-03'` sends Upload-Draft-Interop-Version 5, 'ietf-draft-05'
// sends 6. It addresses the same upload resources as tus 1.0, so each request is translated into
// the tus request with the same meaning and runs through the same route (auth, quota, hooks), and
// the answer is translated back. What differs:
//  - creation (POST): Upload-Complete ?0/?1 says whether the body is the whole file; the length is
//    Upload-Length when sent, else Content-Length of a complete body, else deferred. tus-js-client
//    also sends Upload-Metadata; otherwise Content-Type and Content-Disposition's filename are the
//    file's type and name (as tusd does).
//  - append (PATCH): Upload-Offset as in tus; Upload-Complete ?1 fixes a deferred length at the
//    end of this body. Interop 6 (draft -05) requires Content-Type: application/partial-upload.
//  - offset retrieval (HEAD): 204 with Upload-Offset, Upload-Complete, Upload-Length when known,
//    Cache-Control: no-store.
//  - every answer carries Upload-Limit: max-size=… (draft -05 §"Upload Limit") and the version.
// The optional 104 (Upload Resumption Supported) interim response is not sent: Location comes in
// the 201, which the draft allows and tus-js-client relies on.
import { AppError } from '../errors.ts';
import { b64Metadata } from './ietf-metadata.ts';

export const IETF_INTEROP_VERSIONS = ['5', '6'] as const;
const PARTIAL_UPLOAD_TYPE = 'application/partial-upload';

/** The interop version of a draft request, or null for a tus request. */
export function ietfInteropVersion(request: Request): string | null {
  if (request.headers.has('tus-resumable')) return null;
  return request.headers.get('upload-draft-interop-version');
}

export interface IetfDeps {
  /** Runs a tus 1.0 request through the tus route (auth, access, hooks). */
  tus(request: Request): Promise<Response>;
  /** The request body as a stream, read once. */
  body(): ReadableStream<Uint8Array> | null;
  /** The declared length of an upload, null while deferred, undefined when there is none. */
  lengthOf(uploadId: string): Promise<number | null | undefined>;
  maxUploadBytes: number;
}

export async function handleIetf(request: Request, version: string, uploadId: string | undefined, deps: IetfDeps): Promise<Response> {
  if (!(IETF_INTEROP_VERSIONS as readonly string[]).includes(version)) {
    throw new AppError('precondition_failed', `supported Upload-Draft-Interop-Version: ${IETF_INTEROP_VERSIONS.join(', ')}; or tus 1.0.0 with Tus-Resumable`);
  }
  const method = request.method;
  const headers = tusHeaders(request.headers);
  let response: Response;
  if (method === 'OPTIONS') {
    response = await deps.tus(new Request(request.url, { method, headers }));
  } else if (method === 'POST' && uploadId === undefined) {
    response = await create(request, headers, deps);
  } else if (method === 'PATCH' && uploadId !== undefined) {
    response = await append(request, headers, uploadId, deps);
  } else if ((method === 'HEAD' || method === 'DELETE') && uploadId !== undefined) {
    response = await deps.tus(new Request(request.url, { method, headers }));
  } else {
    throw new AppError('method_not_allowed', 'the resumable-upload draft creates with POST and appends with PATCH', {
      Allow: uploadId === undefined ? 'OPTIONS, POST' : 'HEAD, PATCH, DELETE',
    });
  }
  return answer(response, version, method, deps.maxUploadBytes);
}

async function create(request: Request, headers: Headers, deps: IetfDeps): Promise<Response> {
  const complete = uploadComplete(request);
  const contentLength = contentLengthOf(request);
  const hasBody = contentLength === null ? request.headers.has('transfer-encoding') : contentLength > 0;
  const declared = request.headers.get('upload-length');
  if (complete) consistentEnd(0, contentLength, declared === null || !/^\d{1,16}$/.test(declared) ? null : Number(declared));
  const length = declared ?? (complete && contentLength !== null ? String(contentLength) : null);
  if (length !== null) headers.set('Upload-Length', length);
  else headers.set('Upload-Defer-Length', '1');
  if (!headers.has('upload-metadata')) {
    const metadata = b64Metadata(request.headers);
    if (metadata) headers.set('Upload-Metadata', metadata);
  }
  if (hasBody) headers.set('Content-Type', 'application/offset+octet-stream');
  else headers.delete('content-type');
  const created = await deps.tus(new Request(request.url, { method: 'POST', headers, body: hasBody ? deps.body() : null, duplex: 'half' } as RequestInit));
  if (!complete || length !== null || !created.ok || created.headers.has('x-file-key')) return created;
  // A complete body of unknown length: its end is the upload's length.
  return declareLength(created.headers.get('location')!, created, request, deps);
}

async function append(request: Request, headers: Headers, uploadId: string, deps: IetfDeps): Promise<Response> {
  const version = request.headers.get('upload-draft-interop-version');
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (version === '6' && type !== PARTIAL_UPLOAD_TYPE) {
    throw new AppError('unsupported_media_type', `appends must be ${PARTIAL_UPLOAD_TYPE} (Upload-Draft-Interop-Version 6)`);
  }
  const complete = uploadComplete(request);
  const offset = Number(request.headers.get('upload-offset'));
  const contentLength = contentLengthOf(request);
  const known = await deps.lengthOf(uploadId);
  const deferred = known === null;
  if (complete && Number.isSafeInteger(offset)) consistentEnd(offset, contentLength, known ?? null);
  if (complete && deferred && contentLength !== null && Number.isSafeInteger(offset)) headers.set('Upload-Length', String(offset + contentLength));
  headers.set('Content-Type', 'application/offset+octet-stream');
  const appended = await deps.tus(new Request(request.url, { method: 'PATCH', headers, body: deps.body(), duplex: 'half' } as RequestInit));
  if (!complete || !deferred || headers.has('upload-length') || !appended.ok) return appended;
  return declareLength(request.url, appended, request, deps);
}

/** An empty append that sets the length to the offset reached: the upload finishes. */
async function declareLength(url: string, previous: Response, request: Request, deps: IetfDeps): Promise<Response> {
  const offset = previous.headers.get('upload-offset') ?? '0';
  const headers = tusHeaders(request.headers);
  headers.set('Upload-Offset', offset);
  headers.set('Upload-Length', offset);
  headers.set('Content-Type', 'application/offset+octet-stream');
  headers.delete('content-length');
  headers.delete('transfer-encoding');
  const finished = await deps.tus(new Request(url, { method: 'PATCH', headers, body: null }));
  if (!finished.ok || previous.status !== 201) return finished;
  // The creation's answer (201 with Location), carrying the finished file.
  const merged = new Headers(finished.headers);
  merged.set('Location', url);
  return new Response(finished.body, { status: 201, headers: merged });
}

/** The tus 1.0 equivalent of the draft's request headers (before method-specific changes). */
function tusHeaders(from: Headers): Headers {
  const headers = new Headers(from);
  for (const name of ['upload-draft-interop-version', 'upload-complete', 'upload-incomplete', 'upload-length']) headers.delete(name);
  headers.set('Tus-Resumable', '1.0.0');
  return headers;
}

/**
 * A request that says it completes the upload (Upload-Complete: ?1) must end where its length says:
 * a body of known size that stops short of it, or runs past it, is refused before any byte is
 * stored, rather than kept as an append that leaves the upload incomplete.
 */
function consistentEnd(offset: number, contentLength: number | null, length: number | null): void {
  if (contentLength === null || length === null || offset + contentLength === length) return;
  throw new AppError('invalid_header', `Upload-Complete: ?1, but the body ends at byte ${offset + contentLength} of an upload of ${length} bytes`);
}

/** Upload-Complete is an RFC 8941 boolean: ?1 or ?0. */
function uploadComplete(request: Request): boolean {
  const value = request.headers.get('upload-complete')?.trim();
  if (value === '?1') return true;
  if (value === '?0') return false;
  throw new AppError('invalid_header', 'Upload-Complete must be ?0 or ?1');
}

function contentLengthOf(request: Request): number | null {
  const raw = request.headers.get('content-length');
  return raw !== null && /^\d{1,16}$/.test(raw) ? Number(raw) : null;
}

function answer(tus: Response, version: string, method: string, maxUploadBytes: number): Response {
  const headers = new Headers(tus.headers);
  headers.delete('tus-resumable');
  headers.set('Upload-Draft-Interop-Version', version);
  headers.set('Upload-Limit', `max-size=${maxUploadBytes}`);
  if (!tus.ok || method === 'DELETE' || method === 'OPTIONS') return new Response(tus.body, { status: tus.status, headers });
  const offset = headers.get('upload-offset');
  const length = headers.get('upload-length');
  const complete = headers.has('x-file-key') || (offset !== null && offset === length);
  headers.set('Upload-Complete', complete ? '?1' : '?0');
  if (offset === null) headers.set('Upload-Offset', '0'); // a creation without a body
  if (method === 'HEAD') {
    headers.delete('upload-defer-length');
    headers.delete('upload-metadata');
    headers.set('Cache-Control', 'no-store');
    return new Response(null, { status: 204, headers });
  }
  return new Response(tus.body, { status: tus.status, headers });
}
