// The upload workloads. Each measurement runs against a freshly started server process, so its
// VmHWM (peak RSS) and /proc/<pid>/io deltas belong to that workload alone.
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { payloadSha256 } from './payload.ts';
import { median } from './units.ts';
import { ioDelta, readCpuSeconds, readProcIo, readRss, sampleRss, type ProcIo } from './proc-stats.ts';
import { startTarget, type Running, type TargetName } from './targets.ts';
import { createUpload, patch, uploadAll, type PatchTiming } from './tus-client.ts';

export type Sample = {
  target: TargetName;
  bytes: number;
  ms: number;
  /** VmHWM after the workload: the process's peak resident set since it started */
  peakRss: number;
  /** VmRSS right after start, before any upload */
  idleRss: number;
  /** largest VmRSS sampled every 50 ms during the workload (cross-check of peakRss) */
  sampledRss: number;
  io: ProcIo;
  /** CPU seconds used by the server process and by this client process during the workload */
  serverCpuS: number;
  /** of which the server's main thread (JavaScript, the event loop); the rest is libuv's pool and V8's helpers */
  mainThreadCpuS: number;
  clientCpuS: number;
  /** last byte flushed to the socket → final PATCH response head (ms, median over uploads); NaN for parallel */
  finishLatencyMs: number;
  /** anything wrong with the answers (wrong status, missing or wrong sha256), or '' */
  problem: string;
};

/** Runs the uploads; returns the timing of each upload's final PATCH. */
type Body = (server: Running, agent: http.Agent) => Promise<PatchTiming[]>;

/** One upload of `size` bytes in PATCHes of `chunk` bytes (chunk ≥ size: a single PATCH). */
export function sequential(root: string, target: TargetName, size: number, chunk: number): Promise<Sample> {
  return measure(root, target, size, size, true, async (server, agent) => {
    const upload = await createUpload(server.url, server.headers, size, 'bench-sequential.bin', agent);
    return [chunk >= size ? await patch(upload, 0, size, agent) : await uploadAll(upload, size, chunk, agent)];
  });
}

/** `count` uploads of `size` bytes at once, each in a single PATCH on its own connection. */
export function parallel(root: string, target: TargetName, count: number, size: number): Promise<Sample> {
  return measure(root, target, count * size, size, false, (server, agent) =>
    Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const upload = await createUpload(server.url, server.headers, size, `bench-parallel-${i}.bin`, agent);
        return patch(upload, 0, size, agent);
      }),
    ),
  );
}

/**
 * `count` uploads of `size` bytes one after another, each sent as `size − 1` bytes and then a final
 * PATCH of 1 byte: the final PATCH's time is then only what the server does at the end of an upload
 * (hash digest, move, record), without the megabytes still in flight in the socket buffers that the
 * single-PATCH figure includes.
 */
export function finish(root: string, target: TargetName, size: number, count: number): Promise<Sample> {
  return measure(root, target, count * size, size, true, async (server, agent) => {
    const finals: PatchTiming[] = [];
    for (let i = 0; i < count; i++) {
      const upload = await createUpload(server.url, server.headers, size, `bench-finish-${i}.bin`, agent);
      await patch(upload, 0, size - 1, agent);
      finals.push(await patch(upload, size - 1, 1, agent));
    }
    return finals;
  });
}

async function measure(
  root: string,
  target: TargetName,
  total: number,
  each: number,
  sequentialFinals: boolean,
  body: Body,
): Promise<Sample> {
  const server = await startTarget(root, target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const idleRss = readRss(server.pid).rss;
    const sampler = sampleRss(server.pid);
    const ioBefore = readProcIo(server.pid);
    const cpuBefore = readCpuSeconds(server.pid);
    const mainBefore = readCpuSeconds(server.pid, server.pid);
    const clientBefore = process.cpuUsage();
    const t0 = performance.now();
    const finals = await body(server, agent);
    const ms = performance.now() - t0;
    const client = process.cpuUsage(clientBefore);
    const clientCpuS = (client.user + client.system) / 1e6;
    const serverCpuS = readCpuSeconds(server.pid) - cpuBefore;
    const mainThreadCpuS = readCpuSeconds(server.pid, server.pid) - mainBefore;
    const io = ioDelta(ioBefore, readProcIo(server.pid));
    const sampledRss = sampler.stop();
    const peakRss = readRss(server.pid).hwm;
    const finishLatencyMs = sequentialFinals ? median(finals.map((f) => f.responseAt - f.lastByteAt)) : Number.NaN;
    const problem = finals.map((f) => checkFinal(target, f, each)).find((p) => p !== '') ?? '';
    return { target, bytes: total, ms, peakRss, idleRss, sampledRss, io, serverCpuS, mainThreadCpuS, clientCpuS, finishLatencyMs, problem };
  } finally {
    agent.destroy();
    await server.stop();
    // Flush what is left of this run's dirty pages so writeback does not land in the next run.
    spawnSync('sync');
  }
}

/** The baseline answers the last PATCH 204; the real server 200 with the file record (docs/api.md). */
function checkFinal(target: TargetName, final: PatchTiming, size: number): string {
  const { status, body } = final.reply;
  if (target === 'baseline') return status === 204 ? '' : `final PATCH answered ${status}`;
  if (status !== 200) return `final PATCH answered ${status}, expected 200 with the file record`;
  type FileRecord = { sha256?: unknown; size?: unknown; file?: FileRecord };
  let record: FileRecord;
  try {
    record = JSON.parse(body) as FileRecord;
  } catch {
    return 'final PATCH body is not JSON';
  }
  // Accept the record itself or wrapped once as {file: record}.
  if (record.sha256 === undefined && typeof record.file === 'object' && record.file !== null) record = record.file;
  if (record.sha256 !== payloadSha256(size)) return `record sha256 ${String(record.sha256)} ≠ expected ${payloadSha256(size)}`;
  if (Number(record.size) !== size) return `record size ${String(record.size)} ≠ ${size}`;
  return '';
}
