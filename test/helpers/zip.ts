// Independent ZIP readers for tests: yauzl (names, bytes, CRCs) and Debian's `unzip -t`.
import { spawnSync } from 'node:child_process';
import yauzl from 'yauzl';

export interface ReadEntry {
  name: string;
  data: Buffer;
  crc32: number;
  method: number;
}

export function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, strictFileNames: true }, (err, zip) => (err ? reject(err) : resolve(zip)));
  });
}

/** Every entry through yauzl, which checks sizes and (reading to the end) nothing else; CRCs are compared by callers. */
export async function readWithYauzl(path: string): Promise<ReadEntry[]> {
  const zip = await openZip(path);
  const out: ReadEntry[] = [];
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
    out.push({ name: entry.fileName, data: Buffer.concat(chunks), crc32: entry.crc32, method: entry.compressionMethod });
  }
  zip.close();
  return out;
}

export function unzipTest(path: string): { ok: boolean; output: string } {
  const result = spawnSync('/usr/bin/unzip', ['-t', path], { encoding: 'utf8' });
  return { ok: result.status === 0, output: result.stdout + result.stderr };
}
