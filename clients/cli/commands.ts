// The short commands: ls, rm, link, zip, usage, token. Each prints its result on stdout and
// throws on failure (main.ts turns errors into words and an exit code).
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StreamLineError, type FileRecord, type NodeSource, type ServiceClient, type UserSession } from '../sdk/node.ts';
import { formatBytes, formatDate } from '../shared/format.ts';

type Out = (line: string) => void;

export async function listCommand(session: UserSession<NodeSource>, folder: string | undefined, json: boolean, out: Out): Promise<void> {
  const files: FileRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await session.listMyFiles({ ...(folder === undefined ? {} : { folder }), limit: 1000, ...(cursor ? { cursor } : {}) });
    files.push(...page.files);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  if (json) return out(JSON.stringify(files, null, 2));
  if (files.length === 0) return out(folder === undefined ? 'no files' : `no files in folder "${folder}"`);
  for (const f of files) {
    const name = f.folder ? `${f.folder}/${f.filename}` : f.filename;
    out(`${formatDate(f.created_at)}  ${formatBytes(f.size).padStart(9)}  ${name}  ${f.key}`);
  }
  out(`${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(files.reduce((sum, f) => sum + f.size, 0))}`);
}

export async function removeCommand(session: UserSession<NodeSource>, keys: string[], out: Out): Promise<void> {
  for (const key of keys) {
    await session.deleteFile(key);
    out(`deleted ${key}`);
  }
}

export async function linkCommand(session: UserSession<NodeSource>, key: string, ttl: number | undefined, inline: boolean, out: Out, err: Out): Promise<void> {
  const link = await session.signedUrl(key, { ...(ttl === undefined ? {} : { ttl }), disposition: inline ? 'inline' : 'attachment' });
  out(link.url);
  err(`expires ${link.expires_at}`);
}

export async function zipCommand(session: UserSession<NodeSource>, keys: string[], output: string, name: string | undefined, out: Out): Promise<void> {
  const batch = await session.batchDownload(keys, name);
  const res = await fetch(batch.url);
  if (!res.ok || !res.body) throw new StreamLineError('unexpected_response', res.status, `the ZIP link answered ${res.status}`);
  try {
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(output));
  } catch (error) {
    // A cut download must not be left looking like an archive.
    await rm(output, { force: true });
    throw error;
  }
  out(`wrote ${output} (${keys.length} file${keys.length === 1 ? '' : 's'}, ${formatBytes((await stat(output)).size)})`);
}

export async function usageCommand(session: UserSession<NodeSource>, json: boolean, out: Out): Promise<void> {
  const usage = await session.usage();
  if (json) return out(JSON.stringify(usage));
  const percent = usage.quota_bytes > 0 ? ((usage.used_bytes / usage.quota_bytes) * 100).toFixed(1) : '0';
  out(`used ${formatBytes(usage.used_bytes)} of ${formatBytes(usage.quota_bytes)} (${percent}%)` +
    (usage.reserved_bytes > 0 ? `, ${formatBytes(usage.reserved_bytes)} reserved by unfinished uploads` : ''));
}

export async function tokenCommand(service: ServiceClient<NodeSource>, userId: string, hours: number | undefined, out: Out, err: Out): Promise<void> {
  const minted = await service.generateUserToken(userId, hours);
  out(minted.token);
  err(`token for ${minted.user_id}, expires ${minted.expires_at}`);
}
