// Node sources: a file path, a Buffer/Uint8Array, or a stream. Paths are hashed by streaming the
// file and handed to tus-js-client as fs.createReadStream, which it reopens at each chunk's offset
// (so resuming needs no seeking of ours). A stream can be read only once, yet its SHA-256 must be
// declared when the upload is created: it is spooled to a temp file while being hashed.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SourceChanged, type PreparedSource, type UploadOptions } from './upload.ts';

export type NodeSource = string | Uint8Array | Readable | ReadableStream<Uint8Array> | Blob;

export async function prepareNodeSource(source: NodeSource, options: UploadOptions): Promise<PreparedSource> {
  if (typeof source === 'string') return prepareFile(source, options);
  if (source instanceof Uint8Array) {
    const buffer = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return { input: buffer, size: buffer.length, sha256: createHash('sha256').update(buffer).digest('hex'), filename: 'upload.bin' };
  }
  const stream = source instanceof Readable ? source : Readable.fromWeb((source instanceof Blob ? source.stream() : source) as never);
  return spool(stream, options, source instanceof Blob ? source.type : undefined);
}

async function prepareFile(file: string, options: UploadOptions): Promise<PreparedSource> {
  const { size } = await stat(file);
  const hash = createHash('sha256');
  // Exactly the `size` bytes at the stat are hashed and sent: a file still growing (a log) is
  // uploaded as it was then. The hash reads up to that end; tus-js-client is given `size` as the
  // upload's size and the same bounded stream, so neither reaches what is appended meanwhile.
  if (size === 0) return { input: Buffer.alloc(0), size, sha256: hash.digest('hex'), filename: path.basename(file) };
  const range = { start: 0, end: size - 1 };
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024, ...range }), hash, options.signal ? { signal: options.signal } : {});
  const unchanged = async () => {
    const now = (await stat(file)).size;
    if (now < size) throw new SourceChanged(`${path.basename(file)} shrank to ${now} of its ${size} bytes while it was uploaded; upload it again`);
  };
  return { input: createReadStream(file, range), size, sha256: hash.digest('hex'), filename: path.basename(file), unchanged };
}

async function spool(stream: Readable, options: UploadOptions, filetype?: string): Promise<PreparedSource> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stream-line-'));
  const file = path.join(dir, 'spool');
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(stream, tap, createWriteStream(file), options.signal ? { signal: options.signal } : {});
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const { size } = await stat(file);
  return {
    input: createReadStream(file),
    size,
    sha256: hash.digest('hex'),
    filename: 'upload.bin',
    ...(filetype ? { filetype } : {}),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
