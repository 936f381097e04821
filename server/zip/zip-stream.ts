// A ZIP archive streamed as it is built (yazl): entries open one at a time, no temporary file.
//
// Every entry is stored, never deflated: deflating costs a full core per download at a few tens of
// MB/s and pays only for text on slow links, while most uploads (photos, video, PDFs, archives) do
// not shrink at all. The CRC-32 is node:zlib's, several times faster than yazl's own (figures in
// bench/README.md, "Figures behind choices in the code"). Storing also makes the exact size known
// before the first byte, so the response can carry Content-Length.
//
// A local file opened by storage (its descriptor open, nothing read) is read into reused buffers
// (file-chunks.ts) that go back to the pool once the response has written them (send-stream.ts
// streamToResponse): yazl passes each chunk on as it is, so feeding it costs no copy, and what is
// left is the socket write, the CRC-32 and the read (profile in bench/README.md, "Batch ZIP").
//
// A file that fails to open or read when its turn comes (deleted since the token was issued, a
// storage error) destroys the archive stream with that error: the client sees a truncated download,
// never a complete-looking archive with a file missing. A note entry is not possible here, since
// Content-Length already promised the missing file's bytes. Routes should check every file exists
// before sending headers, so the common case fails cleanly before the first byte.
import { createRequire } from 'node:module';
import type { PassThrough, Readable } from 'node:stream';
import { crc32 as nativeCrc32 } from 'node:zlib';
import yazl, { type EndOptions } from 'yazl';
import { truncateUtf8 } from '../http/content-disposition.ts';
import { isUnreadFileStream } from '../http/send-file.ts';
import { fileChunks } from './file-chunks.ts';

export interface ZipEntryInput {
  folder: string;
  filename: string;
  mtime: Date;
  /** Exact byte count; a stream that yields another count fails the archive. */
  size: number;
  contentType: string;
  open: () => Promise<NodeJS.ReadableStream>;
  /** Told when the opened stream ended at another byte count than `size` (the archive then fails). */
  onWrongSize?: (read: number) => void;
}

export interface ZipStream {
  stream: Readable;
  /** The exact archive length, known before the first byte, or null when it cannot be. */
  size: number | null;
}

export interface ZipStreamOptions {
  /** ZIP64 records even for small archives (tests; readers that need them). */
  forceZip64?: boolean;
}

// C0, DEL, C1 and bidi controls; and what Windows refuses in a name: < > : " | ? *
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069<>:"|?*]/g;
const MAX_SEGMENT_BYTES = 255;

function cleanSegment(segment: string): string {
  // A drive letter ("C:") names a root, not a folder: drop it rather than keep "C_".
  if (/^[A-Za-z]:$/.test(segment)) return '';
  const cleaned = segment.normalize('NFC').replace(UNSAFE_CHARS, '_').trim();
  return cleaned === '.' || cleaned === '..' ? '' : truncateUtf8(cleaned, MAX_SEGMENT_BYTES);
}

/**
 * `<folder>/<filename>` as a relative path no extractor can resolve outside its target: no "..",
 * no leading "/", no backslashes, no drive letters, no control characters. Slashes in the filename
 * are not folders.
 */
export function sanitizeEntryPath(folder: string, filename: string): string {
  const folders = folder.split(/[/\\]/).map(cleanSegment).filter((s) => s !== '');
  const name = cleanSegment(filename.replace(/[/\\]/g, '_')) || 'file';
  return [...folders, name].join('/');
}

function withCounter(path: string, n: number): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  // A leading dot (".env") is a name, not an extension.
  const extAt = dot > slash + 1 ? dot : path.length;
  return `${path.slice(0, extAt)} (${n})${path.slice(extAt)}`;
}

/**
 * Sanitized, unique entry paths in input order; a repeat becomes `name (1).ext`, `name (2).ext`.
 * Compared case-insensitively: Windows and macOS extract "A.jpg" over "a.jpg" and lose a file.
 */
export function entryPaths(entries: ReadonlyArray<{ folder: string; filename: string }>): string[] {
  const taken = new Set<string>();
  return entries.map(({ folder, filename }) => {
    const base = sanitizeEntryPath(folder, filename);
    let path = base;
    for (let n = 1; taken.has(path.toLowerCase()); n++) path = withCounter(base, n);
    taken.add(path.toLowerCase());
    return path;
  });
}

type Crc32Unsigned = (data: Buffer | string, previous?: number | Buffer) => number;
let nativeCrcInstalled = false;

/**
 * yazl computes CRC-32 with `buffer-crc32`'s table loop, several times slower than Node's
 * zlib.crc32 (bench/README.md, "Figures behind choices in the code"). yazl has no option to supply a CRC, so the `unsigned` function of the
 * buffer-crc32 instance yazl itself resolves is replaced by one backed by zlib.crc32, only after
 * both agree on a chained sample. If a yazl release stops using it, archives stay correct, only
 * slower; test/server/zip/zip-stream.test.ts fails loudly in that case.
 */
export function useNativeCrc32InYazl(): boolean {
  if (nativeCrcInstalled) return true;
  const fromYazl = createRequire(createRequire(import.meta.url).resolve('yazl'));
  const bufferCrc32 = fromYazl('buffer-crc32') as { unsigned: Crc32Unsigned };
  const jsUnsigned = bufferCrc32.unsigned;
  const native: Crc32Unsigned = function nativeUnsigned(data, previous) {
    if (!Buffer.isBuffer(data) || (previous !== undefined && typeof previous !== 'number')) return jsUnsigned(data, previous);
    return nativeCrc32(data, previous ?? 0);
  };
  const a = Buffer.from('stream-line upload \u00e9\u00ff');
  const b = Buffer.from([0, 1, 2, 0xfe, 0xff]);
  if (native(b, native(a)) !== jsUnsigned(b, jsUnsigned(a))) return false;
  bufferCrc32.unsigned = native;
  nativeCrcInstalled = true;
  return true;
}

function destroyQuietly(stream: NodeJS.ReadableStream): void {
  const destroyable = stream as Partial<Readable>;
  if (typeof destroyable.destroy === 'function') destroyable.destroy();
}

export function createZipStream(entries: readonly ZipEntryInput[], options: ZipStreamOptions = {}): ZipStream {
  useNativeCrc32InYazl();
  const zip = new yazl.ZipFile();
  const output = zip.outputStream as PassThrough;
  let current: NodeJS.ReadableStream | null = null;

  function fail(error: Error): void {
    if (current !== null) destroyQuietly(current);
    current = null;
    output.destroy(error);
  }

  // A client that disconnects destroys the output; release the file being read at once.
  output.once('close', () => {
    if (current !== null) destroyQuietly(current);
    current = null;
  });
  zip.on('error', (error: Error) => fail(error));

  entryPaths(entries).forEach((path, index) => {
    const entry = entries[index] as ZipEntryInput;
    const fileOptions = { size: entry.size, mtime: entry.mtime, compress: false, forceZip64Format: options.forceZip64 === true };
    zip.addReadStreamLazy(path, fileOptions, (callback) => {
      if (output.destroyed) return;
      // Through a promise so that an open() which throws synchronously fails the archive the same way.
      Promise.resolve().then(() => entry.open()).then(
        (opened) => {
          if (output.destroyed) return destroyQuietly(opened);
          // A local file is read from its descriptor into reused buffers (file-chunks.ts); one byte
          // past its size is asked for, so that a file longer than its record is noticed as before.
          const source = isUnreadFileStream(opened) ? fileChunks(opened, entry.size + 1) : opened;
          current = source;
          // yazl pipes a lazy stream without listening for its errors; unheard, one would crash the process.
          source.once('error', (error: Error) => fail(new Error(`zip entry "${path}": ${error.message}`, { cause: error })));
          let read = 0;
          source.once('end', () => {
            if (current === source) current = null;
            if (read === entry.size) return;
            entry.onWrongSize?.(read);
            fail(new Error(`zip entry "${path}" ended after ${read} of its ${entry.size} bytes`));
          });
          callback(null, source);
          // yazl notices a wrong count too, but cannot say which entry: count here to name it
          // (after yazl's pipe, so that this listener does not start the flow before it).
          source.on('data', (chunk: Uint8Array) => void (read += chunk.byteLength));
        },
        (error: unknown) => fail(new Error(`zip entry "${path}" could not be opened`, { cause: error })),
      );
    });
  });

  let size: number | null = null;
  // With no addFile() entries yazl calls this synchronously inside end(); @types/yazl omits its
  // argument and makes every end() option required.
  const onSize = (total: number): void => {
    size = total >= 0 ? total : null;
  };
  zip.end({ forceZip64Format: options.forceZip64 === true } as EndOptions, onSize as unknown as () => void);
  return { stream: output, size };
}
