// Uploads with the real tus-js-client (Node), plus raw tus requests where a client library would
// hide the case under test.
import * as tus from 'tus-js-client';

export interface UploadResult {
  url: string;
  status: number;
  body: string;
  fileKey: string | null;
}

export interface UploadOptions {
  endpoint: string;
  headers: Record<string, string>;
  data: Buffer;
  metadata?: Record<string, string>;
  chunkSize?: number;
  uploadUrl?: string;
  onProgress?: (sent: number, total: number, upload: tus.Upload) => void;
}

export function tusUpload(options: UploadOptions): { upload: tus.Upload; done: Promise<UploadResult> } {
  let upload!: tus.Upload;
  const done = new Promise<UploadResult>((resolve, reject) => {
    upload = new tus.Upload(options.data, {
      endpoint: `${options.endpoint}/v1/uploads`,
      uploadUrl: options.uploadUrl ?? null,
      headers: options.headers,
      metadata: options.metadata ?? {},
      chunkSize: options.chunkSize ?? Infinity,
      retryDelays: [],
      storeFingerprintForResuming: false,
      onProgress: (sent, total) => options.onProgress?.(sent, total, upload),
      onError: reject,
      onSuccess: (payload) => {
        const res = payload.lastResponse;
        resolve({ url: upload.url!, status: res.getStatus(), body: res.getBody(), fileKey: res.getHeader('X-File-Key') ?? null });
      },
    });
    upload.start();
  });
  return { upload, done };
}

export function b64(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}

export function metadataHeader(meta: Record<string, string>): string {
  return Object.entries(meta).map(([k, v]) => `${k} ${b64(v)}`).join(',');
}

export const TUS = { 'Tus-Resumable': '1.0.0' } as const;

export async function createUpload(base: string, headers: Record<string, string>, length: number | 'defer', meta: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/uploads`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...headers,
      ...(length === 'defer' ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
      ...(Object.keys(meta).length ? { 'Upload-Metadata': metadataHeader(meta) } : {}),
    },
  });
}

export async function patchUpload(url: string, headers: Record<string, string>, offset: number, body: Buffer, extra: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, ...headers, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', ...extra },
    body: bytes(body),
  });
}

export async function headUpload(url: string, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'HEAD', headers: { ...TUS, ...headers } });
}

/** A Buffer as a fetch body (the DOM typings want a Uint8Array over a plain ArrayBuffer). */
export function bytes(data: Buffer): Uint8Array<ArrayBuffer> {
  return new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.length);
}
