// The original API's calls become tus requests sent through this server's own app, carrying the
// caller's credentials: authentication, quota, metadata checks, upload locks, the finishing hooks
// and webhooks all run exactly as for a tus client. Nothing here writes bytes or records itself.
import type { Context } from 'hono';
import { AppError, PROBLEM_CONTENT_TYPE } from '../errors.ts';
import { TUS_PATH } from '../tus.ts';

/** The app's own fetch (Hono's app.fetch), given to the routes when they are mounted. */
export type AppFetch = (request: Request) => Response | Promise<Response>;

/** Headers that say who is calling and from where; the inner request is the same caller's. */
const CARRIED = ['authorization', 'cookie', 'x-service-token', 'x-request-id', 'x-edge-secret', 'x-forwarded-for'];

/** A refusal from the inner request, passed to the client as it is (already problem+json). */
export class InnerRefusal extends Error {
  constructor(readonly response: Response) {
    super(`inner request answered ${response.status}`);
  }
}

export interface TusClient {
  create(length: number, metadata: Record<string, string>): Promise<{ id: string; location: string; fileKey: string | null; expires: string | null }>;
  offset(id: string): Promise<{ offset: number; length: number; fileKey: string | null }>;
  write(id: string, offset: number, bytes: Buffer): Promise<{ offset: number; fileKey: string | null }>;
  deleteFile(key: string): Promise<void>;
}

export function tusClient(c: Context, fetchApp: AppFetch): TusClient {
  const send = async (method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Response> => {
    const inner = new Headers(headers);
    for (const name of CARRIED) {
      const value = c.req.header(name);
      if (value !== undefined) inner.set(name, value);
    }
    const init: RequestInit = { method, headers: inner };
    // A Buffer is a Uint8Array, which fetch sends as it is (the DOM typings only lack the generic).
    if (body !== undefined) init.body = body as unknown as BodyInit;
    const request = new Request(new URL(path, c.req.url), init);
    const response = await fetchApp(request);
    if (response.status >= 400) throw new InnerRefusal(response);
    return response;
  };
  const tus = { 'Tus-Resumable': '1.0.0' };

  return {
    async create(length, metadata) {
      const encoded = Object.entries(metadata).map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`).join(',');
      const response = await send('POST', TUS_PATH, { ...tus, 'Upload-Length': String(length), 'Upload-Metadata': encoded });
      await response.body?.cancel();
      const location = response.headers.get('location') ?? '';
      return {
        id: location.slice(location.lastIndexOf('/') + 1),
        location,
        fileKey: response.headers.get('x-file-key'),
        expires: response.headers.get('upload-expires'),
      };
    },
    async offset(id) {
      const response = await send('HEAD', `${TUS_PATH}/${id}`, tus);
      return {
        offset: headerNumber(response, 'upload-offset'),
        length: headerNumber(response, 'upload-length'),
        fileKey: response.headers.get('x-file-key'),
      };
    },
    async write(id, offset, bytes) {
      const response = await send('PATCH', `${TUS_PATH}/${id}`, {
        ...tus,
        'Upload-Offset': String(offset),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(bytes.length),
      }, bytes);
      await response.body?.cancel();
      return { offset: headerNumber(response, 'upload-offset', offset + bytes.length), fileKey: response.headers.get('x-file-key') };
    },
    async deleteFile(key) {
      const response = await send('DELETE', `/v1/files/${encodeURIComponent(key)}`, {});
      await response.body?.cancel();
    },
  };
}

function headerNumber(response: Response, name: string, fallback?: number): number {
  const raw = response.headers.get(name);
  if (raw === null && fallback !== undefined) return fallback;
  if (raw === null || !/^\d+$/.test(raw)) throw new AppError('internal', `the upload answered without ${name}`);
  return Number(raw);
}

/** The inner refusal as the answer to the client (its status, problem body and Retry-After). */
export async function refusalResponse(refusal: InnerRefusal): Promise<Response> {
  const headers = new Headers({ 'Content-Type': refusal.response.headers.get('content-type') ?? PROBLEM_CONTENT_TYPE });
  const retry = refusal.response.headers.get('retry-after');
  if (retry !== null) headers.set('Retry-After', retry);
  return new Response(await refusal.response.text(), { status: refusal.response.status, headers });
}
