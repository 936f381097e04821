// What the tus extensions cost against a plain upload measured in the same run, on the same server
// process (local disk): one PATCH of `size` bytes (the baseline); the same PATCH with
// Upload-Checksum (its body is staged and verified before tus appends it, server/tus-checksum.ts);
// and the same bytes as 3 partial uploads sent in parallel, then the final upload that joins them
// (hooks/concat.ts), timed apart. Rounds alternate the workloads. Prints medians and ratios.
//   node --import tsx bench/tus-extensions.ts [--size 256MiB] [--rounds 3]
// The server runs from source through tsx (test/helpers/server.ts's spawnServer; importing it also
// makes node:test print an empty TAP summary), not as the compiled build bench/run.ts measures:
// the ratios compare the server with itself.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLOCK } from './lib/payload.ts';
import { watchProcess, type Watched } from './lib/proc-stats.ts';
import { createUpload, request, type Upload } from './lib/tus-client.ts';
import { formatSize, mbPerSecond, median, mib, parseSize } from './lib/units.ts';
import { SERVICE_TOKEN, spawnServer } from '../test/helpers/server.ts';

const service = { 'X-Service-Token': SERVICE_TOKEN };

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}

/** base64 SHA-1 of payload bytes [0, length), as tuspy sends it. */
function payloadSha1(length: number): string {
  const hash = createHash('sha1');
  for (let done = 0; done < length; done += BLOCK.length) hash.update(BLOCK.subarray(0, Math.min(BLOCK.length, length - done)));
  return hash.digest('base64');
}

async function patchAll(upload: Upload, from: number, length: number, agent: http.Agent, extra: Record<string, string> = {}) {
  const { reply } = await request('PATCH', upload.url, agent, length, from, {
    ...upload.headers, ...extra, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream',
  });
  if (reply.status < 200 || reply.status > 299) throw new Error(`PATCH answered ${reply.status}: ${reply.body.slice(0, 300)}`);
  return reply;
}

type Sample = { ms: number; watched: Watched; finalMs?: number };

async function main(): Promise<void> {
  const size = parseSize(arg('size', '256MiB'));
  const rounds = Number(arg('rounds', '3'));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sl-bench-ext-'));
  const server = await spawnServer(dataDir, { LOG_LEVEL: 'info', QUOTA_DEFAULT_BYTES: String(size * 4) });
  const agent = new http.Agent({ keepAlive: true });
  const sha1 = payloadSha1(size);
  const samples: Record<'plain' | 'checksum' | 'concat', Sample[]> = { plain: [], checksum: [], concat: [] };
  const remove = async (key: unknown) => {
    await fetch(`${server.url}/v1/files/${String(key)}?user_id=bench`, { method: 'DELETE', headers: service });
  };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const name of ['plain', 'checksum', 'concat'] as const) {
        const watch = watchProcess(server.pid);
        const t0 = performance.now();
        let key: unknown;
        let finalMs: number | undefined;
        if (name !== 'concat') {
          const upload = await createUpload(server.url, service, size, `${name}.bin`, agent);
          key = (await patchAll(upload, 0, size, agent, name === 'checksum' ? { 'Upload-Checksum': `sha1 ${sha1}` } : {})).headers['x-file-key'];
        } else {
          // Three slices of the same payload bytes, each its own partial upload, sent at once.
          const third = Math.ceil(size / 3);
          const slices = [0, 1, 2].map((i) => [i * third, Math.min(size, (i + 1) * third) - i * third] as const);
          const partials = await Promise.all(slices.map(([, length], i) => createUpload(server.url, { ...service, 'Upload-Concat': 'partial' }, length, `part-${i}`, agent)));
          await Promise.all(partials.map((p, i) => patchAll(p, slices[i]![0], slices[i]![1], agent)));
          const t1 = performance.now();
          const { reply } = await request('POST', `${server.url}/v1/uploads`, agent, 0, 0, {
            ...service, 'Tus-Resumable': '1.0.0', 'Upload-Concat': `final;${partials.map((p) => p.url).join(' ')}`,
            'Upload-Metadata': `filename ${Buffer.from('joined.bin').toString('base64')},user_id ${Buffer.from('bench').toString('base64')}`,
          });
          if (reply.status !== 201) throw new Error(`final upload answered ${reply.status}: ${reply.body.slice(0, 300)}`);
          finalMs = performance.now() - t1;
          key = reply.headers['x-file-key'];
        }
        samples[name].push({ ms: performance.now() - t0, watched: watch.stop(), ...(finalMs !== undefined ? { finalMs } : {}) });
        await remove(key);
      }
    }
  } finally {
    agent.destroy();
    await server.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const base = samples.plain;
  const med = (s: Sample[], f: (x: Sample) => number) => median(s.map(f));
  console.log(`tus extensions, ${formatSize(size)} per upload, ${rounds} rounds, medians (ratio to the plain upload of the same run)`);
  console.log('| workload | wall ms | MB/s | server CPU s | peak RSS MiB | final POST ms |');
  console.log('|---|---|---|---|---|---|');
  for (const name of ['plain', 'checksum', 'concat'] as const) {
    const s = samples[name];
    const ms = med(s, (x) => x.ms);
    const cpu = med(s, (x) => x.watched.cpuS);
    const rss = med(s, (x) => mib(x.watched.peakRss));
    const ratio = (v: number, b: number) => (name === 'plain' ? '' : ` (${(v / b).toFixed(2)}×)`);
    const finalMs = name === 'concat' ? med(s, (x) => x.finalMs!).toFixed(0) : '';
    console.log(
      `| ${name} | ${ms.toFixed(0)}${ratio(ms, med(base, (x) => x.ms))} | ${mbPerSecond(size, ms).toFixed(0)} | ${cpu.toFixed(2)}${ratio(cpu, med(base, (x) => x.watched.cpuS))} | ${rss.toFixed(0)}${ratio(rss, med(base, (x) => mib(x.watched.peakRss)))} | ${finalMs} |`,
    );
  }
  console.log(JSON.stringify({ bench: 'tus-extensions', size, rounds, samples }));
}

await main();
