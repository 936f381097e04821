// `stream-line upload <files…> [--folder F]`: one progress bar per file (cli-progress), and
// resume: each upload URL is kept in the state file as soon as the server creates it, so a run
// that was interrupted (Ctrl-C, kill, crash) continues from the server's offset when run again.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { errorMessage, type FileRecord, type UserSession, type NodeSource } from '../sdk/node.ts';
import { formatBytes } from '../shared/format.ts';
import { ResumeState, type FileIdentity } from './resume-state.ts';

export interface UploadCommandDeps {
  session: UserSession<NodeSource>;
  state: ResumeState;
  signal: AbortSignal;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Uploads the files one after the other; resolves with how many failed. */
export async function uploadCommand(files: string[], folder: string | undefined, deps: UploadCommandDeps): Promise<number> {
  const bars = new cliProgress.MultiBar(
    {
      format: ' {name} |{bar}| {percentage}% | {sent} / {size} | {status}',
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  // Lines printed while bars are drawn go above them, so the two never interleave.
  const log = (line: string, write: (l: string) => void) => (process.stderr.isTTY ? bars.log(`${line}\n`) : write(line));
  let failed = 0;
  try {
    for (const file of files) {
      if (deps.signal.aborted) break;
      try {
        const record = await uploadOne(file, folder, deps, bars, (line) => log(line, deps.err));
        log(`uploaded ${file} → ${record.key} (${formatBytes(record.size)}, sha256 ${record.sha256})`, deps.out);
      } catch (error) {
        if (deps.signal.aborted) break;
        failed++;
        log(`failed ${file}: ${errorMessage(error)}`, deps.err);
      }
    }
  } finally {
    bars.stop();
  }
  return failed;
}

async function uploadOne(file: string, folder: string | undefined, deps: UploadCommandDeps, bars: cliProgress.MultiBar, note: (line: string) => void): Promise<FileRecord> {
  const absolutePath = path.resolve(file);
  const info = await stat(absolutePath);
  if (!info.isFile()) throw new Error('not a regular file');
  const id: FileIdentity = { server: deps.session.baseUrl, absolutePath, size: info.size, mtimeMs: info.mtimeMs, folder: folder ?? '' };
  const name = path.basename(file).slice(0, 30);
  const bar = bars.create(info.size, 0, { name, sent: formatBytes(0), size: formatBytes(info.size), status: 'hashing' });

  let uploadUrl = deps.state.get(id)?.uploadUrl;
  if (uploadUrl) {
    const status = await deps.session.uploadStatus(uploadUrl).catch(() => null);
    if (status) {
      note(`resuming ${file} at byte ${status.offset} of ${info.size}`);
      bar.update(status.offset, { sent: formatBytes(status.offset), status: 'resuming' });
    } else {
      deps.state.delete(id);
      uploadUrl = undefined;
    }
  }

  const record = await deps.session.upload(absolutePath, {
    ...(folder ? { folder } : {}),
    ...(uploadUrl ? { uploadUrl } : {}),
    signal: deps.signal,
    onUploadUrl: (url) => deps.state.set(id, url),
    onProgress: (sent) => bar.update(sent, { sent: formatBytes(sent), status: 'uploading' }),
  });
  bar.update(info.size, { sent: formatBytes(info.size), status: 'done' });
  deps.state.delete(id);
  return record;
}
