// `stream-line upload <files…> [--folder F] [--link]`: progress per file on stderr, and for each
// file sent one result line on stdout with its key (and, with --link, a signed link), so a script
// can read what it uploaded whether or not a terminal is attached.
// Resume: each upload URL is kept in the state file as soon as the server creates it, so a run that
// was interrupted (Ctrl-C, kill, crash) continues from the server's offset when run again.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, type FileRecord, type NodeSource, type SignedUrlOptions, type UserSession } from '../sdk/node.ts';
import { formatBytes } from '../shared/format.ts';
import type { FileProgress, Progress } from './progress.ts';
import { ResumeState, type FileIdentity } from './resume-state.ts';
import { addressHint } from './settings.ts';

export interface UploadCommandDeps {
  session: UserSession<NodeSource>;
  state: ResumeState;
  signal: AbortSignal;
  progress: Progress;
  /** Also print a signed link to each uploaded file. */
  link?: SignedUrlOptions;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Uploads the files one after the other; resolves with how many failed. */
export async function uploadCommand(files: string[], folder: string | undefined, deps: UploadCommandDeps): Promise<number> {
  let failed = 0;
  let hinted = false;
  for (const file of files) {
    if (deps.signal.aborted) break;
    try {
      const record = await uploadOne(file, folder, deps);
      deps.out(`uploaded ${file} → ${record.key} (${formatBytes(record.size)}, sha256 ${record.sha256})`);
      if (deps.link) {
        const link = await deps.session.signedUrl(record.key, deps.link);
        deps.out(`link ${file} → ${link.url} (expires ${link.expires_at})`);
      }
    } catch (error) {
      if (deps.signal.aborted) break;
      failed++;
      deps.err(`failed ${file}: ${errorMessage(error)}`);
      const hint = hinted ? null : addressHint(error, deps.session.baseUrl);
      if (hint) {
        deps.err(`  ${hint}`);
        hinted = true;
      }
    }
  }
  return failed;
}

async function uploadOne(file: string, folder: string | undefined, deps: UploadCommandDeps): Promise<FileRecord> {
  const absolutePath = path.resolve(file);
  const info = await stat(absolutePath);
  if (!info.isFile()) throw new Error('not a regular file');
  const id: FileIdentity = { server: deps.session.baseUrl, absolutePath, size: info.size, mtimeMs: info.mtimeMs, folder: folder ?? '' };

  let uploadUrl = deps.state.get(id)?.uploadUrl;
  // Only an upload the server says is gone (404, 410: null) is forgotten. Any other failure to ask
  // (no network, a refused token, a 5xx) keeps it: the upload goes on from it, or fails and is
  // resumed by the next run, instead of starting over while the old one holds quota until it expires.
  const status = uploadUrl ? await deps.session.uploadStatus(uploadUrl).catch(() => undefined) : undefined;
  if (uploadUrl && status === null) {
    deps.state.delete(id);
    uploadUrl = undefined;
  }

  const progress: FileProgress = deps.progress.start(file, info.size);
  if (status) progress.resumed(status.offset);
  try {
    const record = await deps.session.upload(absolutePath, {
      ...(folder ? { folder } : {}),
      ...(uploadUrl ? { uploadUrl } : {}),
      signal: deps.signal,
      onUploadUrl: (url) => deps.state.set(id, url),
      onProgress: (sent) => progress.sent(sent),
    });
    progress.end('done');
    deps.state.delete(id);
    return record;
  } catch (error) {
    progress.end(deps.signal.aborted ? 'stopped' : 'failed');
    throw error;
  }
}
