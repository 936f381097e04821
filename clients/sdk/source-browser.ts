// Browser-safe sources: a Blob/File, or bytes in memory. The SHA-256 is computed by streaming the
// Blob through hash-wasm (WebCrypto has no incremental digest), so a 4 GB File is never held whole.
import { createSHA256 } from 'hash-wasm';
import type { PreparedSource, UploadOptions } from './upload.ts';

export type BrowserSource = Blob | ArrayBuffer | ArrayBufferView;

export async function prepareBrowserSource(source: BrowserSource, options: UploadOptions): Promise<PreparedSource> {
  const blob = source instanceof Blob ? source : new Blob([bytesOf(source)]);
  const name = (source as Partial<File>).name;
  return {
    input: blob,
    size: blob.size,
    sha256: await sha256OfBlob(blob, options.signal),
    filename: name || 'upload.bin',
    ...(blob.type ? { filetype: blob.type } : {}),
  };
}

export async function sha256OfBlob(blob: Blob, signal?: AbortSignal, onProgress?: (hashedBytes: number) => void): Promise<string> {
  const hasher = await createSHA256();
  hasher.init();
  const reader = blob.stream().getReader();
  let hashed = 0;
  for (;;) {
    signal?.throwIfAborted();
    const { done, value } = await reader.read();
    if (done) break;
    hasher.update(value);
    hashed += value.length;
    onProgress?.(hashed);
  }
  return hasher.digest('hex');
}

function bytesOf(source: ArrayBuffer | ArrayBufferView): Uint8Array<ArrayBuffer> {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  return new Uint8Array(source.buffer as ArrayBuffer, source.byteOffset, source.byteLength);
}
