// The local store's own cost per 10 KiB upload, without HTTP: tus's create, the write of the bytes
// and the move to the file's key, in one process, 16 uploads at a time. Three ways, rounds
// alternating, CPU of the whole process (libuv's pool included) per upload:
//   bare     @tus/file-store as bare @tus/server uses it: create (mkdir -p, empty file, `.json`) and
//            write; its files stay where they are
//   sidecar  the same plus what a finish did with tus's info in a `.json`: mkdir -p of the key
//            directory, rename, rm of the `.json`
//   sqlite   server/storage/local.ts: create (empty file, a row of tus_uploads) and write, then
//            promote (rename into a key directory made once, the row deleted)
//   node --import tsx bench/local-storage.ts [--uploads 4000] [--rounds 5]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Upload } from '@tus/utils';
import { openDb } from '../server/db/open.ts';
import { fileKey } from '../server/storage/keys.ts';
import { createLocalStorage } from '../server/storage/local.ts';
import { median } from './lib/units.ts';

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i > 0 ? process.argv[i + 1] : fallback);
}

const UPLOADS = arg('uploads', '4000');
const ROUNDS = arg('rounds', '5');
const CONCURRENCY = 16;
const BODY = randomBytes(10 * 1024);
const DAY = new Date();

type Way = 'bare' | 'sidecar' | 'sqlite';
type OneUpload = (id: string) => Promise<void>;

const newUpload = (id: string) => new Upload({ id, size: BODY.length, offset: 0, metadata: { filename: 'a.bin', filetype: 'application/octet-stream' } });

async function prepare(way: Way, dir: string): Promise<{ one: OneUpload; close(): void }> {
  if (way === 'sqlite') {
    const db = openDb(dir);
    const storage = await createLocalStorage(dir, db);
    return {
      one: async (id) => {
        await storage.tusStore.create(newUpload(id));
        await storage.tusStore.write(Readable.from([BODY]), id, 0);
        await storage.promote(id, fileKey('bench', DAY, id, 'a.bin'));
      },
      close: () => db.close(),
    };
  }
  const uploads = path.join(dir, 'uploads');
  await fs.mkdir(uploads, { recursive: true });
  const store = new FileStore({ directory: uploads });
  return {
    one: async (id) => {
      await store.create(newUpload(id));
      await store.write(Readable.from([BODY]), id, 0);
      if (way === 'bare') return;
      const to = path.join(dir, fileKey('bench', DAY, id, 'a.bin'));
      await fs.mkdir(path.dirname(to), { recursive: true });
      await fs.rename(path.join(uploads, id), to);
      await fs.rm(path.join(uploads, `${id}.json`), { force: true });
    },
    close: () => {},
  };
}

/** CPU µs per upload of `UPLOADS` uploads, `CONCURRENCY` at a time. */
async function measure(way: Way): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sl-bench-${way}-`));
  const { one, close } = await prepare(way, dir);
  try {
    const ids = Array.from({ length: UPLOADS }, () => randomBytes(16).toString('hex'));
    for (const id of ids.splice(0, 200)) await one(id); // warm-up: compiled code, the key directory
    let next = 0;
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < ids.length) await one(ids[next++]!);
    }));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / ids.length;
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const ways: Way[] = ['bare', 'sidecar', 'sqlite'];
const samples = new Map<Way, number[]>(ways.map((w) => [w, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const way of round % 2 ? [...ways].reverse() : ways) samples.get(way)!.push(await measure(way));
}
const bare = median(samples.get('bare')!);
console.log(`local store, ${UPLOADS - 200} uploads of 10 KiB, ${CONCURRENCY} at once, median of ${ROUNDS} rounds (CPU µs per upload, process total)`);
for (const way of ways) {
  const m = median(samples.get(way)!);
  console.log(`${way.padEnd(8)} ${m.toFixed(1).padStart(7)} µs   ${(m / bare).toFixed(2)}× bare   rounds: ${samples.get(way)!.map((s) => s.toFixed(0)).join(' ')}`);
}
