// Each PATCH step: the detected type is checked as soon as an upload's first bytes have arrived,
// so a disguised file is refused after its first 4 KiB, not after its last byte.
//
// The first SAMPLE_BYTES of an upload may arrive over several PATCHes (a client may send 1 KiB
// chunks), so what has arrived is kept in the upload's row (`head`) between requests; once enough is
// known the type is detected, checked against the policy, and recorded (`type_checked`), and the head
// is dropped. The sniffer listens to the same stream that goes to storage instead of adding a stage
// to it, and lets go of it once the head is complete: the rest of a 1 GiB PATCH costs nothing here.
// Only bytes that storage accepted count: a PATCH that fails records the head up to the offset the
// store reports, and a refusal discards the whole upload (hooks/index.ts).
import type { Readable } from 'node:stream';
import type { UploadRow } from '../server/db/repo.ts';
import type { AppError } from '../server/errors.ts';
import { checkDetected, detectType, SAMPLE_BYTES } from './content-type.ts';
import type { HookDeps } from './deps.ts';

export interface TypeSniff {
  /**
   * Starts listening to `source` (call it once the stream to storage is piped: a 'data' listener
   * sets a stream flowing). On refusal `stop` is called with it, so the write ends at once.
   */
  listen(source: Readable, stop: (refusal: AppError) => void): void;
  /** Waits for a detection in progress; the refusal, when the detected type is not allowed. */
  settle(newOffset: number | null): Promise<AppError | null>;
}

const NOTHING_TO_DO: TypeSniff = { listen() {}, settle: async () => null };

/**
 * Types detected by a write that stored an upload's last byte. The finish that follows records the
 * type with the file, in its one transaction (hooks/finalize.ts); a write of its own would be a
 * second transaction. Held in memory only: after a restart the finish detects again.
 */
export type TypesAtEnd = Map<string, string | null>;

/** Prepares to watch the bytes about to be written at `offset`. */
export async function sniffWrite(
  deps: Pick<HookDeps, 'repo' | 'storage' | 'typePolicy'>,
  uploadId: string,
  offset: number,
  atEnd: TypesAtEnd,
): Promise<TypeSniff> {
  if (offset >= SAMPLE_BYTES) return NOTHING_TO_DO;
  const row = await deps.repo.getUpload(uploadId);
  if (!row || row.type_checked === 1) return NOTHING_TO_DO;
  const known = await headBefore(deps, row, offset);
  // Without the bytes before `offset` (S3 after a crash cut a PATCH) the finish detects instead.
  if (known === null) return NOTHING_TO_DO;

  // Read off the row here: a closure below naming `row` would keep the whole row (and its strings)
  // alive for as long as a PATCH streams.
  const length = row.length;
  const need = Math.min(SAMPLE_BYTES, length ?? SAMPLE_BYTES);
  const chunks: Buffer[] = [known];
  let collected = known.length;
  let detection: Promise<{ detected: string | null; refusal: AppError | null }> | undefined;
  let unlisten = () => {};

  const detect = (stop: (refusal: AppError) => void) => {
    const head = Buffer.concat(chunks).subarray(0, need);
    detection = detectType(head).then((detected) => {
      try {
        checkDetected(deps.typePolicy, detected);
        return { detected, refusal: null };
      } catch (error) {
        stop(error as AppError);
        return { detected, refusal: error as AppError };
      }
    });
  };

  return {
    listen(source, stop) {
      if (collected >= need) return detect(stop);
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        collected += chunk.length;
        if (collected >= need) {
          unlisten();
          detect(stop);
        }
      };
      source.on('data', onData);
      unlisten = () => source.off('data', onData);
    },
    async settle(newOffset) {
      unlisten();
      const result = detection ? await detection : undefined;
      if (result?.refusal) return result.refusal;
      if (newOffset === null) return null;
      if (result && newOffset >= need) {
        if (newOffset === length) atEnd.set(uploadId, result.detected);
        else await deps.repo.setUploadType(uploadId, result.detected);
      } else {
        // Keep what storage holds of the head for the next PATCH (or for the finish to detect).
        await deps.repo.setUploadHead(uploadId, Buffer.concat(chunks).subarray(0, Math.min(newOffset, need)));
      }
      return null;
    },
  };
}

/** The upload's bytes [0, offset): from its row, or read back from storage when the row lags. */
async function headBefore(deps: Pick<HookDeps, 'storage'>, row: UploadRow, offset: number): Promise<Buffer | null> {
  const head = row.head ?? Buffer.alloc(0);
  if (head.length >= offset) return head.subarray(0, offset);
  // A PATCH cut by a crash stored bytes it never recorded here.
  const rest = await deps.storage.readUpload(row.id, head.length, offset);
  if (!rest) return null;
  const chunks: Buffer[] = [head];
  for await (const chunk of rest) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The finish: an upload whose type was not settled while its bytes arrived (smaller than the sample
 * with a deferred length, or a head lost to a crash on S3) is detected from what it has.
 * Returns undefined when the bytes cannot be read before the commit (then the caller reads the file).
 */
export async function detectAtFinish(
  deps: Pick<HookDeps, 'storage' | 'typePolicy'>,
  row: UploadRow,
  size: number,
): Promise<string | null | undefined> {
  if (row.type_checked === 1) return row.detected_type;
  const need = Math.min(SAMPLE_BYTES, size);
  const head = row.head !== null && row.head.length >= need ? row.head.subarray(0, need) : await headBefore(deps, { ...row, head: null }, need);
  if (head === null) return undefined;
  const detected = await detectType(head);
  checkDetected(deps.typePolicy, detected);
  return detected;
}
