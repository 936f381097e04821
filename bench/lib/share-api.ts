// What bench/sharing.ts asks of the real server before it downloads anything (docs/api.md: files,
// signed links, batch ZIPs): upload a file with tus and learn its key, mint a signed link, mint a
// batch-ZIP link. Uploads use the raw tus client, so the bytes are the generated payload.
import http from 'node:http';
import { payloadSha256 } from './payload.ts';
import type { Running } from './targets.ts';
import { createUpload, patch } from './tus-client.ts';

const API_TIMEOUT_MS = 30_000;
/** Long enough for any run; the server refuses more than 7 days. */
const LINK_TTL_SECONDS = 3600;

/** Uploads `size` payload bytes in one PATCH; returns the key of the finished file's record. */
export async function uploadForKey(server: Running, size: number, filename: string, agent: http.Agent): Promise<string> {
  const upload = await createUpload(server.url, server.headers, size, filename, agent);
  const { reply } = await patch(upload, 0, size, agent);
  type FileRecord = { key?: unknown; sha256?: unknown; file?: FileRecord };
  let record = JSON.parse(reply.body) as FileRecord;
  if (record.key === undefined && typeof record.file === 'object' && record.file !== null) record = record.file;
  if (typeof record.key !== 'string') throw new Error(`final PATCH answered ${reply.status} without a key: ${reply.body.slice(0, 300)}`);
  if (record.sha256 !== payloadSha256(size)) throw new Error(`record of ${filename}: sha256 ${String(record.sha256)} ≠ the bytes sent`);
  return record.key;
}

/** GET /v1/files/signed-url → the link anyone can open. */
export async function signedUrl(server: Running, key: string): Promise<string> {
  const query = new URLSearchParams({ key, ttl: String(LINK_TTL_SECONDS) });
  return urlFrom(await api(server, 'GET', `/v1/files/signed-url?${query}`), 'signed-url');
}

/** POST /v1/files/batch-download {keys} → the ZIP link. */
export async function batchUrl(server: Running, keys: readonly string[]): Promise<string> {
  return urlFrom(await api(server, 'POST', '/v1/files/batch-download', { keys }), 'batch-download');
}

async function api(server: Running, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: { ...server.headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(API_TIMEOUT_MS),
  });
}

async function urlFrom(res: Response, what: string): Promise<string> {
  const text = await res.text();
  const url = res.ok ? (JSON.parse(text) as { url?: unknown }).url : undefined;
  if (typeof url !== 'string') throw new Error(`${what} answered ${res.status}: ${text.slice(0, 300)}`);
  return url;
}
