// The upload area: Uppy's Dashboard (drag & drop, per-file and total progress, pause/resume)
// sending with @uppy/tus. Golden Retriever keeps the queue across a closed tab, and tus
// fingerprints in localStorage let each file continue from the server's offset. Before a file
// is sent its SHA-256 is computed here, streamed through hash-wasm, and declared in the upload
// metadata (`sha256`), so the server checks integrity end to end.
import Uppy, { type UppyFile } from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import GoldenRetriever from '@uppy/golden-retriever';
import Tus from '@uppy/tus';
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import { errorFromResponse, StreamLineError } from '../../sdk/errors.ts';
import { errorMessage } from '../../sdk/messages.ts';
import { sha256OfBlob } from '../../sdk/source-browser.ts';
import type { SignedIn } from './sign-in.ts';

type Meta = { filename?: string; filetype?: string; folder?: string; sha256?: string };
type File = UppyFile<Meta, Record<string, never>>;

export interface UploaderHooks {
  folder: () => string;
  onUploaded: () => void;
  onError: (message: string, error: StreamLineError | null) => void;
}

export function mountUploader(target: HTMLElement, who: SignedIn, hooks: UploaderHooks): () => void {
  // Golden Retriever keeps the queue (with each file's upload URL) under this id: one queue per
  // server and user, so a queue restored for one server is never resumed with another's token.
  const uppy = new Uppy<Meta, Record<string, never>>({ id: `stream-line-${new URL(who.server).origin}-${who.userId ?? 'cookie'}`, autoProceed: false });
  uppy.use(Dashboard, {
    inline: true,
    target,
    width: '100%',
    height: 380,
    proudlyDisplayPoweredByUppy: false,
    note: 'Any size. Interrupted uploads continue where they stopped, even after closing the tab.',
  });
  uppy.use(Tus, {
    endpoint: `${who.server}/v1/uploads`,
    headers: who.token ? { Authorization: `Bearer ${who.token}` } : {},
    chunkSize: 16 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000],
    removeFingerprintOnSuccess: true,
    allowedMetaFields: ['filename', 'filetype', 'folder', 'sha256'],
  });
  uppy.use(GoldenRetriever);

  // The folder is the one shown when the file was added.
  uppy.on('file-added', (file) => uppy.setFileMeta(file.id, { folder: hooks.folder(), filename: file.name ?? 'upload.bin', filetype: file.type || 'application/octet-stream' }));
  uppy.addPreProcessor(async (ids) => {
    for (const id of ids) await declareSha256(uppy, uppy.getFile(id) as File);
  });
  uppy.on('upload-error', (_file, error) => {
    const known = problemOf(error);
    hooks.onError(errorMessage(known ?? error), known);
  });
  uppy.on('complete', (result) => {
    if ((result.successful ?? []).length > 0) hooks.onUploaded();
  });
  return () => uppy.destroy();
}

async function declareSha256(uppy: Uppy<Meta, Record<string, never>>, file: File): Promise<void> {
  if (file.meta.sha256 || !(file.data instanceof Blob)) return;
  const size = file.data.size;
  let shown = -1;
  const sha256 = await sha256OfBlob(file.data, undefined, (hashed) => {
    const percent = Math.floor((hashed / Math.max(size, 1)) * 100);
    if (percent === shown) return;
    shown = percent;
    uppy.emit('preprocess-progress', file, { mode: 'determinate', message: 'Computing SHA-256…', value: hashed / Math.max(size, 1) });
  });
  uppy.setFileMeta(file.id, { sha256 });
  uppy.emit('preprocess-complete', file);
}

/** tus-js-client's error carries the server's answer: its problem+json names the code. */
function problemOf(error: unknown): StreamLineError | null {
  const res = (error as { originalResponse?: { getStatus(): number; getHeader(n: string): string | undefined; getBody(): string } | null }).originalResponse;
  if (!res) return null;
  return errorFromResponse(res.getStatus(), res.getHeader('Content-Type') ?? null, res.getBody() ?? '');
}
