// Many small uploads at once, each one creation-with-upload POST (tus 1.0 "creation-with-upload":
// the whole body rides on the POST that creates the upload), the way a photo-backup client sends
// thumbnails and documents. The figures are uploads per second and the server's CPU per upload.
import http from 'node:http';
import { payloadSha256 } from './payload.ts';
import { readCpuSeconds } from './proc-stats.ts';
import type { Running, TargetName } from './targets.ts';
import { request } from './tus-client.ts';

export type SmallOptions = {
  size: number;
  concurrency: number;
  /** uploads to send; fewer when `maxMs` runs out first */
  count: number;
  maxMs: number;
  /** whose files they become (metadata user_id: the real server's service token acts for this user) */
  userId: string;
};

export type SmallSample = {
  uploads: number;
  ms: number;
  /** server CPU (user + system, all threads) from the first request until `settled` resolved */
  serverCpuS: number;
  /** time from the last response until `settled` resolved (hooks' work after the responses) */
  settleMs: number;
  /** the first wrong answer, or '' */
  problem: string;
};

export const uploadsPerSecond = (s: SmallSample): number => s.uploads / (s.ms / 1000);
export const cpuMsPerUpload = (s: SmallSample): number => (s.serverCpuS * 1000) / s.uploads;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** Sends the uploads and measures them; `settled` (if given) is awaited inside the CPU window. */
export async function measureSmall(server: Running, target: TargetName, o: SmallOptions, settled?: (uploads: number) => Promise<void>): Promise<SmallSample> {
  const cpuBefore = readCpuSeconds(server.pid);
  const t0 = performance.now();
  const { uploads, problem } = await sendSmall(server, target, o);
  const ms = performance.now() - t0;
  await settled?.(uploads);
  const settleMs = performance.now() - t0 - ms;
  return { uploads, ms, serverCpuS: readCpuSeconds(server.pid) - cpuBefore, settleMs, problem };
}

/** `o.count` uploads (or as many as `o.maxMs` allows) by `o.concurrency` clients on keep-alive connections. */
export async function sendSmall(server: Running, target: TargetName, o: SmallOptions): Promise<{ uploads: number; problem: string }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const deadline = performance.now() + o.maxMs;
  const expected = payloadSha256(o.size);
  let next = 0;
  let done = 0;
  let problem = '';
  const worker = async (): Promise<void> => {
    while (next < o.count && performance.now() < deadline) {
      const i = next++;
      const headers = {
        ...server.headers,
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(o.size),
        'Upload-Metadata': `filename ${b64(`small-${i}.bin`)},user_id ${b64(o.userId)}`,
        'Content-Type': 'application/offset+octet-stream',
      };
      try {
        const { reply } = await request('POST', `${server.url}/v1/uploads`, agent, o.size, 0, headers);
        const wrong = checkReply(target, reply, o.size, expected);
        if (wrong) problem ||= wrong;
        else done++;
      } catch (error) {
        problem ||= `upload ${i} failed: ${(error as Error).message}`;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { uploads: done, problem };
}

/** Both answer 201 with Upload-Offset = size; the real server's body is the file record (docs/api.md "Finishing"). */
function checkReply(target: TargetName, reply: { status: number; headers: http.IncomingHttpHeaders; body: string }, size: number, sha256: string): string {
  if (reply.status !== 201) return `creation-with-upload answered ${reply.status}: ${reply.body.slice(0, 200)}`;
  if (Number(reply.headers['upload-offset']) !== size) return `Upload-Offset ${String(reply.headers['upload-offset'])} ≠ ${size}`;
  if (target === 'baseline') return '';
  try {
    const record = JSON.parse(reply.body) as { sha256?: unknown; size?: unknown };
    if (record.sha256 !== sha256 || record.size !== size) return `file record ${reply.body.slice(0, 200)} does not match the bytes sent`;
  } catch {
    return `file record is not JSON: ${reply.body.slice(0, 200)}`;
  }
  return '';
}
