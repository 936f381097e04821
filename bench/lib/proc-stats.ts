// What Linux says about a server process: bytes it read (/proc/<pid>/io) and its memory
// (/proc/<pid>/status). `rchar` counts every read(2) including sockets, so an upload received
// once over HTTP and never re-read costs ~1.0× its size; a second read of the file makes it ~2.0×.
// `read_bytes` counts only what had to come from the block device (0 when served by page cache).
import { readFileSync, writeFileSync } from 'node:fs';

export type ProcIo = { rchar: number; readBytes: number; wchar: number; writeBytes: number };

export function readProcIo(pid: number): ProcIo {
  const fields = parseFields(readFileSync(`/proc/${pid}/io`, 'utf8'), ':');
  return {
    rchar: fields.get('rchar') ?? Number.NaN,
    readBytes: fields.get('read_bytes') ?? Number.NaN,
    wchar: fields.get('wchar') ?? Number.NaN,
    writeBytes: fields.get('write_bytes') ?? Number.NaN,
  };
}

export function ioDelta(before: ProcIo, after: ProcIo): ProcIo {
  return {
    rchar: after.rchar - before.rchar,
    readBytes: after.readBytes - before.readBytes,
    wchar: after.wchar - before.wchar,
    writeBytes: after.writeBytes - before.writeBytes,
  };
}

// USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every mainstream Linux ABI.
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) the process has used since it started; with `thread`, only that
 * thread's (the main thread's id is the pid: its share shows whether the event loop is the limit).
 */
export function readCpuSeconds(pid: number, thread?: number): number {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may contain spaces): state is field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_SECOND; // fields 14 and 15
}

/** Resident set now and its high-water mark since the process started, in bytes. */
export function readRss(pid: number): { rss: number; hwm: number } {
  const fields = parseFields(readFileSync(`/proc/${pid}/status`, 'utf8'), ':');
  return { rss: (fields.get('VmRSS') ?? Number.NaN) * 1024, hwm: (fields.get('VmHWM') ?? Number.NaN) * 1024 };
}

/**
 * Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux ≥ 4.0), so a long-lived server's
 * peak can be read per workload. False when the kernel refuses; VmHWM then spans the whole life.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples VmRSS every `everyMs` as a cross-check of VmHWM (which the kernel keeps exactly).
 * `stop()` returns the largest sample; sampling ends by itself if the process goes away.
 */
export function sampleRss(pid: number, everyMs = 50): { stop: () => number } {
  let peak = 0;
  const tick = (): void => {
    try {
      peak = Math.max(peak, readRss(pid).rss);
    } catch {
      clearInterval(timer);
    }
  };
  const timer = setInterval(tick, everyMs);
  tick();
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      return peak;
    },
  };
}

function parseFields(text: string, sep: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(sep);
    if (at > 0) fields.set(line.slice(0, at).trim(), Number.parseInt(line.slice(at + 1), 10));
  }
  return fields;
}

export type Watched = { peakRss: number; sampledRss: number; cpuS: number; hwmReset: boolean };

/**
 * Watches a long-lived process through one workload: resets its VmHWM, samples VmRSS, and on
 * `stop()` reports the peak (VmHWM, or the sampled peak when the reset was refused) and CPU used.
 */
export function watchProcess(pid: number): { stop: () => Watched } {
  const hwmReset = resetPeakRss(pid);
  const sampler = sampleRss(pid);
  const cpuBefore = readCpuSeconds(pid);
  return {
    stop: () => {
      const cpuS = readCpuSeconds(pid) - cpuBefore;
      const sampledRss = sampler.stop();
      return { peakRss: hwmReset ? readRss(pid).hwm : sampledRss, sampledRss, cpuS, hwmReset };
    },
  };
}
