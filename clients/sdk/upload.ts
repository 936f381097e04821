// One upload over tus 1.0 with tus-js-client, resolving with the file record the final PATCH
// answers (docs/api.md "Finishing"). Environment-neutral: what the bytes are (a Blob, a path, a
// stream) is settled beforehand by a SourcePreparer (source-browser.ts, source-node.ts).
import { getMimeType } from 'hono/utils/mime';
import * as tus from 'tus-js-client';
import { errorFromResponse, StreamLineError } from './errors.ts';
import { keyPath, type Http } from './http.ts';
import type { FileRecord } from './types.ts';

export interface UploadOptions {
  /** Logical folder such as `main/pictures`; the root when omitted. */
  folder?: string;
  /** The name to record; defaults to the File's or the path's name. */
  filename?: string;
  /** Media type to record; defaults to the Blob's type, else the one the filename's extension names. */
  filetype?: string;
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  /** Aborting keeps the upload on the server, so it can be resumed with `uploadUrl`. */
  signal?: AbortSignal;
  /** Resume this upload (as reported by `onUploadUrl`) instead of creating a new one. */
  uploadUrl?: string;
  /** Called once the server has created the upload: keep it to resume after a crash. */
  onUploadUrl?: (url: string) => void;
  /** Bytes per PATCH (default 16 MiB): smaller loses less on a broken connection. */
  chunkSize?: number;
  /** Waits before each retry of a failed request, in ms (tus-js-client's retryDelays). */
  retryDelays?: number[];
}

/** Bytes ready for tus-js-client, with the SHA-256 to declare, computed by streaming them once. */
export interface PreparedSource {
  input: unknown;
  size: number;
  sha256: string;
  filename: string;
  filetype?: string;
  /** Releases what preparing took (an open file, a spooled temp file). */
  dispose?: () => Promise<void>;
  /**
   * Throws a SourceChanged when the source no longer holds the bytes it was prepared with (a file
   * truncated since). Checked before each request that sends bytes: a body shorter than the length
   * it announces would otherwise wait until the server's idle timeout, over and over.
   */
  unchanged?: () => Promise<void>;
}

/** The source lost bytes since it was prepared; the upload cannot complete. */
export class SourceChanged extends Error {}

export type SourcePreparer<S> = (source: S, options: UploadOptions) => Promise<PreparedSource>;

const DEFAULT_CHUNK = 16 * 1024 * 1024;

export async function runUpload(http: Http, prepared: PreparedSource, options: UploadOptions): Promise<FileRecord> {
  options.signal?.throwIfAborted();
  const filename = options.filename ?? prepared.filename;
  const metadata: Record<string, string> = { filename, sha256: prepared.sha256 };
  const filetype = options.filetype ?? prepared.filetype ?? typeFromExtension(filename);
  if (filetype) metadata.filetype = filetype;
  if (options.folder) metadata.folder = options.folder;

  const finalResponse = await new Promise<tus.HttpResponse>((resolve, reject) => {
    const upload = new tus.Upload(prepared.input as tus.Upload['file'], {
      endpoint: `${http.baseUrl}/v1/uploads`,
      uploadUrl: options.uploadUrl ?? null,
      headers: http.headers,
      metadata,
      uploadSize: prepared.size,
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK,
      retryDelays: options.retryDelays ?? [0, 1000, 3000, 5000],
      // Resumption is the caller's choice (uploadUrl/onUploadUrl), not a hidden store.
      storeFingerprintForResuming: false,
      removeFingerprintOnSuccess: true,
      onUploadUrlAvailable: () => {
        if (upload.url) options.onUploadUrl?.(upload.url);
      },
      onProgress: (sent, total) => options.onProgress?.(sent, total),
      ...(prepared.unchanged ? { onBeforeRequest: (req: tus.HttpRequest) => (req.getMethod() === 'HEAD' ? undefined : prepared.unchanged!()) } : {}),
      // A source that changed fails at once, not after the retries a network failure gets.
      onShouldRetry: (error, attempt, opts) =>
        !(error.causingError instanceof SourceChanged) && (tus.defaultOptions.onShouldRetry?.(error, attempt, opts) ?? true),
      onSuccess: ({ lastResponse }) => resolve(lastResponse),
      onError: (error) => reject(toUploadError(error)),
    });
    const onAbort = () => {
      void upload.abort(false);
      reject(options.signal!.reason);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    upload.start();
  });
  return recordFrom(http, finalResponse);
}

/**
 * What the extension names, from the same table the server uses for a missing filetype (hono's),
 * without parameters: a `charset` would be a guess about bytes nobody has read.
 */
function typeFromExtension(filename: string): string | undefined {
  return getMimeType(filename)?.split(';')[0]!.trim();
}

/**
 * The final PATCH answers the record as JSON. An upload that was already complete when resumed
 * ends on a HEAD instead, which carries only X-File-Key: the record is then fetched by key.
 */
async function recordFrom(http: Http, res: tus.HttpResponse): Promise<FileRecord> {
  const body = res.getBody();
  if (body) {
    try {
      const record = JSON.parse(body) as FileRecord;
      if (typeof record.key === 'string') return record;
    } catch {
      // fall through to X-File-Key
    }
  }
  const key = res.getHeader('X-File-Key');
  if (!key) throw new StreamLineError('unexpected_response', res.getStatus(), 'the upload finished without a file record');
  return http.json<FileRecord>('GET', `/v1/files/metadata/${keyPath(key)}`);
}

function toUploadError(error: Error): Error {
  const cause = (error as tus.DetailedError).causingError;
  if (cause instanceof SourceChanged) return cause;
  const res = (error as tus.DetailedError).originalResponse;
  if (res) return errorFromResponse(res.getStatus(), res.getHeader('Content-Type') ?? null, res.getBody() ?? '');
  return new StreamLineError('network_error', 0, error.message, { cause: error });
}
