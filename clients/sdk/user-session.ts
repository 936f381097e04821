// A user's session from their JWT (or, in a browser on the server's origin, their cookie):
// everything a signed-in user may do with their own files.
import { StreamLineError } from './errors.ts';
import { createHttp, keyPath, type Http, type HttpOptions } from './http.ts';
import type { BatchDownload, FileList, FileRecord, ListOptions, SignedUrl, SignedUrlOptions, Usage } from './types.ts';
import { runUpload, type SourcePreparer, type UploadOptions } from './upload.ts';

export interface UserSessionOptions extends HttpOptions {
  /** The user's JWT; omit in a browser page that signs in with the server's cookie. */
  token?: string;
}

export interface UploadStatus {
  offset: number;
  length: number | null;
}

export interface UserSession<S> {
  readonly baseUrl: string;
  readonly token: string | undefined;
  listMyFiles(options?: ListOptions): Promise<FileList>;
  getFileMetadata(key: string): Promise<FileRecord>;
  /** Uploads over tus with its SHA-256 declared; resolves with the recorded file. */
  upload(source: S, options?: UploadOptions): Promise<FileRecord>;
  /** Where an unfinished upload stands on the server; null once it is gone (finished or expired). */
  uploadStatus(uploadUrl: string): Promise<UploadStatus | null>;
  signedUrl(key: string, options?: SignedUrlOptions): Promise<SignedUrl>;
  /** An expiring link to one ZIP of these files (docs/api.md "Batch ZIP"). */
  batchDownload(keys: string[], name?: string): Promise<BatchDownload>;
  usage(): Promise<Usage>;
  deleteFile(key: string): Promise<void>;
}

export function userSessionWith<S>(prepare: SourcePreparer<S>): (options: UserSessionOptions) => UserSession<S> {
  return (options) => {
    const http = createHttp(options, options.token ? { Authorization: `Bearer ${options.token}` } : {});
    return {
      baseUrl: http.baseUrl,
      token: options.token,
      listMyFiles: (list = {}) => http.json('GET', '/v1/files/all', { query: { ...list } }),
      getFileMetadata: (key) => http.json('GET', `/v1/files/metadata/${keyPath(key)}`),
      async upload(source, uploadOptions = {}) {
        const prepared = await prepare(source, uploadOptions);
        try {
          return await runUpload(http, prepared, uploadOptions);
        } finally {
          await prepared.dispose?.();
        }
      },
      uploadStatus: (uploadUrl) => uploadStatus(http, uploadUrl),
      signedUrl: (key, link = {}) => http.json('GET', '/v1/files/signed-url', { query: { key, ...link } }),
      batchDownload: (keys, name) => http.json('POST', '/v1/files/batch-download', { body: name === undefined ? { keys } : { keys, name } }),
      usage: () => http.json('GET', '/v1/usage'),
      deleteFile: async (key) => {
        await http.json('DELETE', `/v1/files/${keyPath(key)}`);
      },
    };
  };
}

async function uploadStatus(http: Http, uploadUrl: string): Promise<UploadStatus | null> {
  let res: Response;
  try {
    res = await http.fetch(uploadUrl, { method: 'HEAD', headers: { ...http.headers, 'Tus-Resumable': '1.0.0' } });
  } catch (error) {
    throw new StreamLineError('network_error', 0, (error as Error).message, { cause: error });
  }
  if (res.status === 404 || res.status === 410) return null;
  const offset = res.headers.get('upload-offset');
  if (!res.ok || offset === null) throw new StreamLineError('unexpected_response', res.status, `HEAD ${uploadUrl} answered ${res.status}`);
  const length = res.headers.get('upload-length');
  return { offset: Number(offset), length: length === null ? null : Number(length) };
}
