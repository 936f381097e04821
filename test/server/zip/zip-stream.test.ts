import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, statfs, truncate, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { openZip, readWithYauzl, unzipTest, type ReadEntry } from '../../helpers/zip.ts';
import { until } from '../../helpers/until.ts';
import {
  createZipStream,
  entryPaths,
  sanitizeEntryPath,
  useNativeCrc32InYazl,
  type ZipEntryInput,
} from '../../../server/zip/zip-stream.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zip-stream-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sanitizeCases: Array<[string, string, string]> = [
  ['main/pictures', 'a.jpg', 'main/pictures/a.jpg'],
  ['', 'a.jpg', 'a.jpg'],
  ['/abs/olute/', 'a.jpg', 'abs/olute/a.jpg'],
  ['../../etc', 'passwd', 'etc/passwd'],
  ['a/./b/../c', 'x', 'a/b/c/x'],
  ['win\\dows\\dir', 'a.txt', 'win/dows/dir/a.txt'],
  ['C:/Users', 'a.txt', 'Users/a.txt'],
  ['c:', 'a.txt', 'a.txt'],
  ['docs', 'sub/dir\\name.txt', 'docs/sub_dir_name.txt'],
  ['docs', '..', 'docs/file'],
  ['docs', '', 'docs/file'],
  ['docs', '   ', 'docs/file'],
  ['', '/', '_'],
  ['tab\tfolder', 'new\nline\r.txt', 'tab_folder/new_line_.txt'],
  ['x', 'nul\u0000.txt', 'x/nul_.txt'],
  ['x', 'what?<>*|".txt', 'x/what______.txt'],
  ['x', 'photo\u202Egpj.exe', 'x/photo_gpj.exe'],
  ['ünï', 'cödé 😀.txt', 'ünï/cödé 😀.txt'],
];

for (const [folder, filename, expected] of sanitizeCases) {
  test(`sanitizeEntryPath(${JSON.stringify(folder)}, ${JSON.stringify(filename)})`, () => {
    assert.equal(sanitizeEntryPath(folder, filename), expected);
  });
}

test('sanitizeEntryPath caps each segment at 255 UTF-8 bytes', () => {
  const path = sanitizeEntryPath('é'.repeat(300), `${'😀'.repeat(100)}.png`);
  const [folder, name] = path.split('/') as [string, string];
  assert.ok(Buffer.byteLength(folder) <= 255 && Buffer.byteLength(folder) >= 250);
  assert.ok(Buffer.byteLength(name) <= 255 && name.endsWith('.png') && !name.includes('\uFFFD'));
});

const dedupeCases: Array<[string, Array<[string, string]>, string[]]> = [
  ['no duplicates', [['a', 'x.txt'], ['b', 'x.txt']], ['a/x.txt', 'b/x.txt']],
  ['repeats are numbered', [['a', 'x.txt'], ['a', 'x.txt'], ['a', 'x.txt']], ['a/x.txt', 'a/x (1).txt', 'a/x (2).txt']],
  ['case-insensitive', [['a', 'Photo.JPG'], ['A', 'photo.jpg']], ['a/Photo.JPG', 'A/photo (1).jpg']],
  ['no extension', [['', 'README'], ['', 'README']], ['README', 'README (1)']],
  ['leading dot is not an extension', [['', '.env'], ['', '.env']], ['.env', '.env (1)']],
  ['dot in a folder is not an extension', [['v1.2', 'notes'], ['v1.2', 'notes']], ['v1.2/notes', 'v1.2/notes (1)']],
  ['a taken numbered name is skipped', [['', 'x.txt'], ['', 'x (1).txt'], ['', 'x.txt']], ['x.txt', 'x (1).txt', 'x (2).txt']],
  ['duplicates after sanitizing', [['../a', 'x'], ['a', 'x']], ['a/x', 'a/x (1)']],
];

for (const [name, input, expected] of dedupeCases) {
  test(`entryPaths: ${name}`, () => {
    assert.deepEqual(entryPaths(input.map(([folder, filename]) => ({ folder, filename }))), expected);
  });
}

async function fileEntry(folder: string, filename: string, content: Buffer): Promise<ZipEntryInput> {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.bin`);
  await writeFile(path, content);
  return {
    folder,
    filename,
    mtime: new Date('2024-05-06T07:08:10Z'),
    size: content.length,
    contentType: 'application/octet-stream',
    open: async () => createReadStream(path),
  };
}

async function writeArchive(entries: ZipEntryInput[], forceZip64 = false, into = dir): Promise<{ path: string; size: number | null }> {
  const zip = createZipStream(entries, { forceZip64 });
  const path = join(into, `${Math.random().toString(36).slice(2)}.zip`);
  await pipeline(zip.stream, createWriteStream(path));
  return { path, size: zip.size };
}

test('a real archive: names, bytes, CRCs, duplicates, size known up front, unzip -t clean', async () => {
  const contents = [Buffer.from('hello\n'), Buffer.alloc(0), Buffer.from('x'.repeat(100_000)), Buffer.from([0, 255, 1, 254])];
  const entries = [
    await fileEntry('main/pictures', 'Cat.jpg', contents[0]!),
    await fileEntry('main/pictures', 'empty.txt', contents[1]!),
    await fileEntry('main/pictures', 'cat.jpg', contents[2]!),
    await fileEntry('../dökümanlar', 'b\u00e9.bin', contents[3]!),
  ];
  const { path, size } = await writeArchive(entries);
  assert.equal(size, (await stat(path)).size);

  const check = unzipTest(path);
  assert.ok(check.ok && check.output.includes('No errors detected'), check.output);

  const read = await readWithYauzl(path);
  assert.deepEqual(read.map((e) => e.name), ['main/pictures/Cat.jpg', 'main/pictures/empty.txt', 'main/pictures/cat (1).jpg', 'dökümanlar/bé.bin']);
  read.forEach((entry, i) => {
    assert.deepEqual(entry.data, contents[i]);
    assert.equal(entry.crc32, crc32(contents[i]!));
    assert.equal(entry.method, 0, 'stored');
  });
});

test('an empty list is a valid empty archive', async () => {
  const { path, size } = await writeArchive([]);
  assert.equal(size, 22);
  assert.equal((await stat(path)).size, 22);
  assert.deepEqual(await readWithYauzl(path), []);
});

test('forced ZIP64 records are readable by unzip and yauzl', async () => {
  const content = Buffer.from('zip64 please');
  const { path, size } = await writeArchive([await fileEntry('f', 'a.txt', content)], true);
  const bytes = await readFile(path);
  assert.equal(size, bytes.length);
  assert.ok(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'ZIP64 end of central directory record');
  assert.ok(unzipTest(path).ok, unzipTest(path).output);
  assert.deepEqual((await readWithYauzl(path))[0]?.data, content);
});

test('each entry opens only after the previous one was read to its end', async () => {
  let open = 0;
  let maxOpen = 0;
  const entries = Array.from({ length: 5 }, (_, i): ZipEntryInput => ({
    folder: '',
    filename: `f${i}`,
    mtime: new Date(),
    size: 1 << 20,
    contentType: 'application/octet-stream',
    open: async () => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      const stream = Readable.from([Buffer.alloc(1 << 20, i)]);
      // 'end', not 'close': a file handle is released a tick after its last byte is read.
      stream.once('end', () => open--);
      return stream;
    },
  }));
  const zip = createZipStream(entries);
  let bytes = 0;
  await pipeline(zip.stream, new Writable({ write: (chunk: Buffer, _e, cb) => ((bytes += chunk.length), cb()) }));
  assert.equal(maxOpen, 1);
  assert.equal(bytes, zip.size);
});

function sinkUntilError(stream: Readable): Promise<Error> {
  return pipeline(stream, new Writable({ write: (_c, _e, cb) => cb() })).then(
    () => assert.fail('the archive should have failed'),
    (error: Error) => error,
  );
}

test('a file missing at its turn ends the archive with an error, and later files are never opened', async () => {
  let laterOpened = false;
  const entries = [
    await fileEntry('', 'first.txt', Buffer.from('first')),
    { ...(await fileEntry('', 'gone.txt', Buffer.from('gone'))), open: () => Promise.reject(new Error('ENOENT')) },
    { ...(await fileEntry('', 'later.txt', Buffer.from('later'))), open: async () => ((laterOpened = true), Readable.from([])) },
  ];
  const error = await sinkUntilError(createZipStream(entries).stream);
  assert.match(error.message, /gone\.txt/);
  assert.equal(laterOpened, false);
});

test('an open() that throws synchronously fails the archive the same way', async () => {
  const entry = await fileEntry('', 'x', Buffer.from('x'));
  const error = await sinkUntilError(createZipStream([{ ...entry, open: () => { throw new Error('boom'); } }]).stream);
  assert.match(error.message, /could not be opened/);
});

test('a read error mid-file fails the archive instead of crashing the process', async () => {
  const entry: ZipEntryInput = {
    ...(await fileEntry('', 'x', Buffer.alloc(10))),
    size: 1000,
    open: async () => new Readable({ read() { this.destroy(new Error('disk on fire')); } }),
  };
  const error = await sinkUntilError(createZipStream([entry]).stream);
  assert.match(error.message, /disk on fire/);
});

test('a file whose size differs from its record fails the archive and names the entry', async () => {
  for (const [stored, recorded] of [[100, 99], [99, 100]] as const) {
    const entry = await fileEntry('', 'x', Buffer.alloc(stored));
    const told: number[] = [];
    const error = await sinkUntilError(createZipStream([{ ...entry, size: recorded, onWrongSize: (read) => told.push(read) }]).stream);
    assert.match(error.message, /zip entry "x" ended after \d+ of its \d+ bytes/);
    assert.deepEqual(told, [stored]);
  }
});

async function disconnectAfter(bytes: number, openDelayMs = 0): Promise<{ source: ReturnType<typeof createReadStream> | null; secondOpened: boolean }> {
  const big = join(dir, 'big.bin');
  await writeFile(big, Buffer.alloc(32 << 20, 7));
  const seen = { source: null as ReturnType<typeof createReadStream> | null, secondOpened: false };
  const entries: ZipEntryInput[] = [
    { folder: '', filename: 'big', mtime: new Date(), size: 32 << 20, contentType: 'x', open: async () => {
      await new Promise((resolve) => setTimeout(resolve, openDelayMs));
      return (seen.source = createReadStream(big));
    } },
    { folder: '', filename: 'next', mtime: new Date(), size: 1, contentType: 'x', open: async () => ((seen.secondOpened = true), Readable.from([Buffer.from('n')])) },
  ];
  const { stream } = createZipStream(entries);
  let received = 0;
  // Breaking out of for-await destroys the stream, as a closed socket does.
  for await (const chunk of stream) if ((received += (chunk as Buffer).length) > bytes) break;
  // The first entry's open began before the client left, and may end after: wait for it to end
  // and its file to close. Left alone, the 32 MiB file would stay open forever (the deadline fails it).
  await until('the first entry\'s file to be opened and closed again', () => seen.source?.closed === true, 10_000);
  // The window in which a second entry opened by mistake would show (it can only hide a fault, not invent one).
  await new Promise((resolve) => setTimeout(resolve, 50));
  return seen;
}

test('a client that disconnects mid-file releases the open file at once', async () => {
  const { source, secondOpened } = await disconnectAfter(1 << 20);
  assert.ok(source !== null);
  assert.ok(source.bytesRead >= 1 << 20 && source.bytesRead < 32 << 20, `read ${source.bytesRead}`);
  assert.equal(source.closed, true, 'the file descriptor was released');
  assert.equal(secondOpened, false);
});

test('a file that finishes opening after the client left is closed at once', async () => {
  const { source, secondOpened } = await disconnectAfter(0, 20);
  assert.ok(source !== null);
  assert.equal(source.bytesRead, 0);
  assert.equal(source.closed, true);
  assert.equal(secondOpened, false);
});

test('yazl computes CRC-32 through buffer-crc32.unsigned, now backed by zlib.crc32', async () => {
  assert.equal(useNativeCrc32InYazl(), true);
  const require = createRequire(import.meta.url);
  const yazlSource = await readFile(require.resolve('yazl'), 'utf8');
  // If this fails, a yazl upgrade moved its CRC: archives stay correct but the ~4x speedup is gone.
  assert.match(yazlSource, /crc32\.unsigned\(chunk, this\.crc32\)/);
  const bufferCrc32 = createRequire(require.resolve('yazl'))('buffer-crc32') as { unsigned: (b: Buffer, p?: number) => number };
  assert.equal(bufferCrc32.unsigned.name, 'nativeUnsigned');
  const sample = Buffer.from('The quick brown fox jumps over the lazy dog');
  assert.equal(bufferCrc32.unsigned(sample), 0x414fa339);
});

/** tmpfs when it has room: 4 GiB through the disk's writeback took 70 s here, in memory under 30 s. */
async function scratchDirFor(bytes: number): Promise<string> {
  const shm = await statfs('/dev/shm').catch(() => null);
  if (shm !== null && shm.bavail * shm.bsize > bytes * 1.25) return mkdtemp('/dev/shm/zip-stream-');
  return dir;
}

test('a real archive past 4 GiB: ZIP64 sizes and offsets, checked by unzip -t and yauzl', { timeout: 180_000 }, async () => {
  const sparse = join(dir, 'sparse.bin');
  const bigSize = 4 * 2 ** 30 + 12_345;
  await writeFile(sparse, '');
  await truncate(sparse, bigSize);
  const tail = Buffer.from('after the 4 GiB mark');
  const entries: ZipEntryInput[] = [
    { folder: 'big', filename: 'zeros.bin', mtime: new Date(), size: bigSize, contentType: 'application/octet-stream', open: async () => createReadStream(sparse, { highWaterMark: 1 << 20 }) },
    await fileEntry('big', 'tail.txt', tail),
  ];
  const into = await scratchDirFor(bigSize);
  // 4 GiB in /dev/shm is memory: removed whatever happens, or it stays until the machine reboots.
  let written: string | undefined;
  try {
    const { path, size } = await writeArchive(entries, false, into);
    written = path;
    assert.equal(size, (await stat(path)).size);
    assert.ok(size! > 2 ** 32);
    const check = unzipTest(path);
    assert.ok(check.ok && check.output.includes('No errors detected'), check.output);
    const zip = await openZip(path);
    const seen: Array<[string, number, number]> = [];
    for await (const entry of zip.eachEntry()) seen.push([entry.fileName, entry.uncompressedSize, entry.relativeOffsetOfLocalHeader]);
    zip.close();
    assert.equal(seen[0]?.[1], bigSize);
    assert.ok(seen[1]![2] > 2 ** 32, 'second entry starts past 4 GiB');
  } finally {
    if (into !== dir) await rm(into, { recursive: true, force: true });
    else if (written) await rm(written, { force: true });
  }
});

/** Opened as local storage opens a file (storage/local.ts): descriptor open, nothing read yet. */
async function openedFile(path: string): Promise<ReturnType<typeof createReadStream>> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  await new Promise((resolve, reject) => stream.once('open', resolve).once('error', reject));
  return stream;
}

test('opened local files (read from their descriptors): bytes and CRCs across 1 MiB chunks, unzip -t clean', async () => {
  const contents = [Buffer.alloc(0), Buffer.from('small'), Buffer.alloc((3 << 20) + 5, 'abc'), Buffer.alloc(1 << 20, 9)];
  const entries = await Promise.all(contents.map(async (content, i) => {
    const entry = await fileEntry('d', `f${i}.bin`, content);
    const path = join(dir, `opened-${i}.bin`);
    await writeFile(path, content);
    const opened: Array<ReturnType<typeof createReadStream>> = [];
    return { entry: { ...entry, open: async () => (opened.push(await openedFile(path)), opened.at(-1)!) }, opened };
  }));
  const { path, size } = await writeArchive(entries.map((e) => e.entry));
  assert.equal(size, (await stat(path)).size);
  const check = unzipTest(path);
  assert.ok(check.ok && check.output.includes('No errors detected'), check.output);
  const read = await readWithYauzl(path);
  read.forEach((entry, i) => {
    assert.deepEqual(entry.data, contents[i]);
    assert.equal(entry.crc32, crc32(contents[i]!));
  });
  for (const { opened } of entries) assert.equal(opened[0]?.closed, true, 'each file closed after its entry');
});

test('an opened local file of another size than its record fails the archive and names the entry', async () => {
  for (const [stored, recorded] of [[(1 << 20) + 1, 1 << 20], [1 << 20, (1 << 20) + 1], [100, 99]] as const) {
    const path = join(dir, `sized-${stored}.bin`);
    await writeFile(path, Buffer.alloc(stored, 1));
    const told: number[] = [];
    const entry: ZipEntryInput = { folder: '', filename: 'x', mtime: new Date(), size: recorded, contentType: 'x', open: () => openedFile(path), onWrongSize: (read) => told.push(read) };
    const error = await sinkUntilError(createZipStream([entry]).stream);
    assert.match(error.message, /zip entry "x" ended after \d+ of its \d+ bytes/);
    assert.equal(told.length, 1);
    assert.ok(stored < recorded ? told[0] === stored : told[0]! > recorded, `told ${told[0]} for ${stored} stored, ${recorded} recorded`);
  }
});

test('a client that disconnects mid-file releases an opened local file at once', async () => {
  const big = join(dir, 'big-opened.bin');
  await writeFile(big, Buffer.alloc(32 << 20, 7));
  let source: ReturnType<typeof createReadStream> | null = null;
  const entries: ZipEntryInput[] = [{ folder: '', filename: 'big', mtime: new Date(), size: 32 << 20, contentType: 'x', open: async () => (source = await openedFile(big)) }];
  let received = 0;
  for await (const chunk of createZipStream(entries).stream) if ((received += (chunk as Buffer).length) > 1 << 20) break;
  assert.ok(source !== null);
  const opened = source as ReturnType<typeof createReadStream>;
  if (!opened.closed) await new Promise<void>((resolve) => opened.once('close', () => resolve()));
  assert.equal(opened.closed, true, 'the file descriptor was released');
});
