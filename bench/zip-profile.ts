// Where a batch ZIP's time goes: the built server (dist/server/main.js), a batch of stored files
// downloaded by curl into /dev/null a few times with V8's CPU profiler on (started and stopped
// through the inspector around the downloads alone), the profile summarised (self and total time
// per function, time by group). By default the files are uploaded by a first server process and
// the profiled one starts on the same DATA_DIR; `--same-process` uploads through the profiled
// process and has it answer `--small-gets` seconds of 10 KiB signed GETs (wrk) first: the history
// the server has when bench/sharing.ts reaches its ZIP part (a heap grown by uploads and requests
// makes every full GC dearer). Prints MB/s of file data and the server's CPU per GiB of each
// download. bench/README.md.
//   node --import tsx bench/zip-profile.ts --zip-count 20 --zip-size 50MiB --downloads 4
//   node --import tsx bench/zip-profile.ts --same-process --small-gets 20000
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summarizeProfile, type Cost } from './lib/cpu-profile.ts';
import { connectInspector } from './lib/inspector.ts';
import { curlDownload, wrk } from './lib/download-clients.ts';
import { watchProcess } from './lib/proc-stats.ts';
import { batchUrl, signedUrl, uploadForKey } from './lib/share-api.ts';
import { killAllSync, startTarget, type Running } from './lib/targets.ts';
import { formatSize, mbPerSecond, mib, parseSize } from './lib/units.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GiB = 1024 ** 3;
const { values } = parseArgs({
  options: {
    'zip-count': { type: 'string', default: '20' },
    'zip-size': { type: 'string', default: '50MiB' },
    downloads: { type: 'string', default: '4' },
    'same-process': { type: 'boolean', default: false },
    /** seconds of wrk on a 10 KiB signed GET before the downloads (with --same-process) */
    'small-gets': { type: 'string', default: '0' },
    /** no CPU profile: the figures and the GC counts alone */
    'no-profile': { type: 'boolean', default: false },
  },
});
const count = Number(values['zip-count']);
const size = parseSize(values['zip-size']);
const downloads = Number(values.downloads);
const profiling = !values['no-profile'];

/** Counts the server's garbage collections (perf_hooks 'gc' entries), installed through the inspector. */
const COUNT_GCS = `(() => {
  const { PerformanceObserver, constants } = process.getBuiltinModule('node:perf_hooks');
  const stats = (globalThis.__benchGc = { major: 0, minor: 0, ms: 0 });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) stats.major++;
      else stats.minor++;
      stats.ms += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  return true;
})()`;
type GcStats = { major: number; minor: number; ms: number };

async function upload(server: Running): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true });
  try {
    const keys: string[] = [];
    for (let i = 0; i < count; i++) keys.push(await uploadForKey(server, size, `zip-${i}.bin`, agent));
    return keys;
  } finally {
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-zip-profile-'));
  const nodeArgs = ['--inspect=127.0.0.1:0'];
  let profile = '';
  try {
    let keys: string[] = [];
    if (!values['same-process']) {
      const uploader = await startTarget(ROOT, 'real', { dataDir });
      try {
        keys = await upload(uploader);
      } finally {
        await uploader.stop();
      }
    }
    const server = await startTarget(ROOT, 'real', { dataDir, nodeArgs });
    const dataBytes = count * size;
    try {
      if (values['same-process']) {
        keys = await upload(server);
        const seconds = Number(values['small-gets']);
        if (seconds > 0) {
          const agent = new http.Agent({ keepAlive: true });
          const small = await uploadForKey(server, 10 * 1024, 'small.bin', agent);
          agent.destroy();
          const load = await wrk(await signedUrl(server, small), seconds, 4);
          console.log(`before: ${load.requests} signed 10 KiB GETs`);
        }
      }
      const url = await batchUrl(server, keys);
      const inspector = await connectInspector(server);
      await inspector.evaluate(COUNT_GCS);
      const gcs = async (): Promise<GcStats> => (await inspector.evaluate('globalThis.__benchGc')) as GcStats;
      const stopProfile = profiling ? await inspector.startProfile() : undefined;
      for (let i = 0; i < downloads; i++) {
        const gcBefore = await gcs();
        const watch = watchProcess(server.pid);
        const d = await curlDownload(url);
        const w = watch.stop();
        const gc = await gcs();
        const gcLine = `GCs: ${gc.major - gcBefore.major} full (Mark-Compact), ${gc.minor - gcBefore.minor} other, ${(gc.ms - gcBefore.ms).toFixed(0)} ms`;
        console.log(`download ${i + 1}: ${d.status}, ${d.bytes} bytes, ${mbPerSecond(dataBytes, d.ms).toFixed(0)} MB/s of file data, server CPU ${(w.cpuS / (dataBytes / GiB)).toFixed(2)} s per GiB, peak RSS ${mib(w.peakRss).toFixed(0)} MiB; ${gcLine}`);
      }
      if (stopProfile) profile = await stopProfile();
      inspector.close();
    } finally {
      await server.stop();
    }
    if (!profiling) return;
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    const kept = join(ROOT, 'bench/results/batch-zip.cpuprofile');
    writeFileSync(kept, profile);
    const s = summarizeProfile(kept, 20);
    console.log(`\n${downloads} × ZIP of ${count} × ${formatSize(size)}; main thread ${(s.totalMs / 1000).toFixed(1)} s sampled; ${kept}`);
    console.log('\nself time by group:');
    s.groups.slice(0, 20).forEach((x) => console.log(fmt(x)));
    console.log('\nself time by function:');
    s.self.forEach((x) => console.log(fmt(x)));
    console.log('\ntotal time by function:');
    s.total.forEach((x) => console.log(fmt(x)));
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

const fmt = (x: Cost): string => `${(x.share * 100).toFixed(1).padStart(5)}%  ${x.ms.toFixed(0).padStart(7)} ms  ${x.name}`;

main().catch((error: unknown) => {
  killAllSync();
  console.error(error);
  process.exit(1);
});
