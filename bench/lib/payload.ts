// The bytes every workload uploads: one random 1 MiB block repeated, generated on the fly so the
// client never holds more than that block in memory, whatever the upload size. The block differs
// per run (random), and the expected SHA-256 of any length is computed from it ahead of timing.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

export const BLOCK = randomBytes(1024 * 1024);

/**
 * Writes payload bytes [`from`, `from + length`) to `sink`, honouring backpressure, so that any
 * split of an upload into PATCHes sends the same bytes; stops early if `signal` aborts.
 */
export async function writePayload(sink: Writable, length: number, signal?: AbortSignal, from = 0): Promise<void> {
  let position = from;
  const end = from + length;
  while (position < end) {
    if (signal?.aborted || sink.destroyed) throw new Error('upload aborted while sending');
    const inBlock = position % BLOCK.length;
    const piece = Math.min(BLOCK.length - inBlock, end - position);
    const chunk = piece === BLOCK.length ? BLOCK : BLOCK.subarray(inBlock, inBlock + piece);
    position += piece;
    if (!sink.write(chunk)) await drainOrClose(sink);
  }
}

/** Waits for 'drain' (or 'close', so a dead socket cannot hang the loop) and leaves no listener behind. */
function drainOrClose(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

const digests = new Map<number, string>();

/** SHA-256 (lowercase hex) of the first `length` payload bytes; cached per length. */
export function payloadSha256(length: number): string {
  const known = digests.get(length);
  if (known) return known;
  const hash = createHash('sha256');
  for (let done = 0; done < length; done += BLOCK.length) {
    hash.update(BLOCK.subarray(0, Math.min(BLOCK.length, length - done)));
  }
  const hex = hash.digest('hex');
  digests.set(length, hex);
  return hex;
}

export async function writePayloadFile(path: string, length: number): Promise<void> {
  const file = createWriteStream(path);
  await writePayload(file, length);
  file.end();
  await once(file, 'close');
}
