// GET /v1/files/all for a user with many files: the whole listing in one streamed answer (what
// clients of the original server ask for: no limit, no cursor) beside the same files fetched as
// pages of 1000 (limit + cursor, the baseline), in the same run on the same server and database.
// The server is the build (npm run build); its database is seeded directly with `--files` rows.
//   node --import tsx bench/listing.ts --files 100000 --repeat 3
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { describeMachine, loadAverage } from './lib/machine.ts';
import { readRss, watchProcess } from './lib/proc-stats.ts';
import { killAllSync, realUnavailable, startTarget, type Running } from './lib/targets.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, repeat: { type: 'string', default: '3' } } });
const FILES = Number(values.files);
const REPEAT = Number(values.repeat);
const USER = 'many-files';
process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});

type Run = { seconds: number; bytes: number; requests: number; peakMiB: number; cpuS: number };

function seed(dataDir: string): void {
  const db = new Database(join(dataDir, 'stream-line.sqlite'));
  db.pragma('busy_timeout = 5000');
  const insert = db.prepare(
    `INSERT INTO files (key, user_id, upload_id, folder, filename, content_type, size, sha256, created_at, state, category)
     VALUES (?, ?, ?, 'main/pictures', ?, 'image/jpeg', 123456, ?, ?, 'ready', 'image')`,
  );
  const start = Date.parse('2026-01-01T00:00:00Z');
  db.transaction(() => {
    for (let i = 0; i < FILES; i++) {
      const id = i.toString(16).padStart(32, '0');
      insert.run(`users/${USER}/2026/01/01/${id}.jpg`, USER, id, `photo-${i}.jpg`, 'ab'.repeat(32), start + i * 1000);
    }
  })();
  db.close();
}

/** Reads an answer to its end without keeping it, as a client that parses as it reads would. */
async function drain(response: Response): Promise<{ bytes: number; tail: string }> {
  let bytes = 0;
  let tail = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-200);
  }
  return { bytes, tail };
}

async function measure(server: Running, paged: boolean): Promise<Run> {
  const watch = watchProcess(server.pid);
  const started = performance.now();
  let bytes = 0;
  let requests = 0;
  let cursor: string | null = null;
  do {
    const query = paged ? `&limit=1000${cursor ? `&cursor=${cursor}` : ''}` : '';
    const response = await fetch(`${server.url}/v1/files/all?user_id=${USER}${query}`, { headers: server.headers });
    if (response.status !== 200) throw new Error(`listing answered ${response.status}`);
    requests++;
    if (paged) {
      const text = await response.text();
      bytes += text.length;
      const page = JSON.parse(text) as { files: unknown[]; next_cursor: string | null };
      cursor = page.next_cursor;
    } else {
      const { bytes: read, tail } = await drain(response);
      bytes += read;
      if (!tail.endsWith('"next_cursor":null}')) throw new Error('the streamed listing did not end');
    }
  } while (cursor);
  const seconds = (performance.now() - started) / 1000;
  const { peakRss, cpuS } = watch.stop();
  return { seconds, bytes, requests, peakMiB: peakRss / 1024 ** 2, cpuS };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const missing = realUnavailable(ROOT);
  if (missing) throw new Error(missing);
  const server = await startTarget(ROOT, 'real');
  try {
    seed(server.dataDir);
    const idleMiB = readRss(server.pid).rss / 1024 ** 2;
    const runs: Record<'paged' | 'streamed', Run[]> = { paged: [], streamed: [] };
    for (let i = 0; i < REPEAT; i++) {
      // Alternating which goes first spreads any drift of the shared machine over both.
      for (const side of i % 2 === 0 ? (['paged', 'streamed'] as const) : (['streamed', 'paged'] as const)) {
        runs[side].push(await measure(server, side === 'paged'));
      }
    }
    const m = (side: 'paged' | 'streamed', key: keyof Run) => median(runs[side].map((r) => r[key]));
    const machine = describeMachine();
    console.log(`# GET /v1/files/all, ${FILES} files of one user (${machine.cpu}, ${machine.cores} cores, load ${loadAverage()}), medians of ${REPEAT}`);
    console.log(`server RSS before the first listing: ${idleMiB.toFixed(1)} MiB`);
    console.log('| | pages of 1000 (baseline) | one streamed answer | ratio |');
    console.log('|---|---|---|---|');
    for (const [label, key, digits] of [['requests', 'requests', 0], ['seconds', 'seconds', 2], ['server CPU, s', 'cpuS', 2], ['bytes received', 'bytes', 0], ['server peak RSS, MiB', 'peakMiB', 1]] as const) {
      const paged = m('paged', key);
      const streamed = m('streamed', key);
      console.log(`| ${label} | ${paged.toFixed(digits)} | ${streamed.toFixed(digits)} | ${(streamed / paged).toFixed(2)}x |`);
    }
  } finally {
    await server.stop();
  }
}

main().catch((error) => {
  killAllSync();
  console.error(error);
  process.exit(1);
});
