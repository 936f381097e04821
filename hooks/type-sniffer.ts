// Each PATCH step: the detected type is checked as soon as an upload's first bytes have arrived,
// so a disguised file is refused after its first 4 KiB, not after its last byte.
//
// The first SAMPLE_BYTES of an upload may arrive over several PATCHes (a client may send 1 KiB
// chunks), so what has arrived is kept in the upload's row (`head`) between requests; once enough is
// known the type is detected, checked against the policy, and recorded (`type_checked`), and the head
// is dropped. The sniffer is shown the chunks the SHA-256 tap passes to storage (hooks/sha256.ts)
// instead of adding a stage of its own, and ignores them once the head is complete: the rest of a
// 1 GiB PATCH costs one check per chunk here.
// Only bytes that storage accepted count: a PATCH that fails records the head up to the offset the
// store reports, and a refusal discards the whole upload (hooks/index.ts).
import type { UploadRow } from '../server/db/repo.ts';
import type { AppError } from '../server/errors.ts';
import { checkDetected, detectType, SAMPLE_BYTES } from './content-type.ts';
import type { HookDeps } from './deps.ts';

export interface TypeSniff {
  /** Shown each chunk on its way to storage (hooks/sha256.ts's tap). */
  chunk(bytes: Buffer): void;
  /** Starts watching; on refusal `write.cut()` is called, so the write ends at once. */
  listen(write: { cut(): void }): void;
  /** Waits for a detection in progress; the refusal, when the detected type is not allowed. */
  settle(newOffset: number | null): Promise<AppError | null>;
}

const NOTHING_TO_DO: TypeSniff = { chunk() {}, listen() {}, settle: async () => null };

/**
 * Types detected by a write that stored an upload's last byte. The finish that follows records the
 * type with the file, in its one transaction (hooks/finalize.ts); a write of its own would be a
 * second transaction. Held in memory only: after a restart the finish detects again.
 */
export type TypesAtEnd = Map<string, string | null>;

type SniffDeps = Pick<HookDeps, 'repo' | 'storage' | 'typePolicy'>;

/** Prepares to watch the bytes about to be written at `offset`. */
export async function sniffWrite(deps: SniffDeps, uploadId: string, offset: number, atEnd: TypesAtEnd): Promise<TypeSniff> {
  if (offset >= SAMPLE_BYTES) return NOTHING_TO_DO;
  const row = await deps.repo.getUpload(uploadId);
  if (!row || row.type_checked === 1) return NOTHING_TO_DO;
  const known = await headBefore(deps, row, offset);
  // Without the bytes before `offset` (S3 after a crash cut a PATCH) the finish detects instead.
  if (known === null) return NOTHING_TO_DO;
  // The length, not the row: keeping the row would keep its strings alive for as long as a PATCH streams.
  return new HeadSniff(deps, uploadId, row.length, known, atEnd);
}

/**
 * One write's sniffing. An object rather than closures over a shared scope: a PATCH keeps it for as
 * long as its body streams (bench/README.md, "What a held PATCH keeps, object by object").
 */
class HeadSniff implements TypeSniff {
  readonly #chunks: Buffer[];
  #collected: number;
  readonly #need: number;
  #write: { cut(): void } | undefined;
  /** Settled: later chunks are not counted (storage was told its offset already). */
  #settled = false;
  #detection: Promise<{ detected: string | null; refusal: AppError | null }> | undefined;

  constructor(
    private readonly deps: SniffDeps,
    private readonly uploadId: string,
    private readonly length: number | null,
    known: Buffer,
    private readonly atEnd: TypesAtEnd,
  ) {
    this.#need = Math.min(SAMPLE_BYTES, length ?? SAMPLE_BYTES);
    this.#chunks = known.length > 0 ? [known] : [];
    this.#collected = known.length;
  }

  listen(write: { cut(): void }): void {
    this.#write = write;
    if (this.#collected >= this.#need) this.#detect();
  }

  chunk(bytes: Buffer): void {
    // Once the head is complete nothing more is kept, whether or not detection has started.
    if (this.#settled || this.#detection !== undefined || this.#collected >= this.#need) return;
    this.#chunks.push(bytes);
    this.#collected += bytes.length;
    // Before listen() there is no write to cut yet: listen() detects then.
    if (this.#collected >= this.#need && this.#write !== undefined) this.#detect();
  }

  #detect(): void {
    const head = Buffer.concat(this.#chunks).subarray(0, this.#need);
    this.#detection = detectType(head).then((detected) => {
      try {
        checkDetected(this.deps.typePolicy, detected);
        return { detected, refusal: null };
      } catch (error) {
        this.#write!.cut();
        return { detected, refusal: error as AppError };
      }
    });
  }

  async settle(newOffset: number | null): Promise<AppError | null> {
    this.#settled = true;
    const result = this.#detection ? await this.#detection : undefined;
    if (result?.refusal) return result.refusal;
    if (newOffset === null) return null;
    const need = this.#need;
    if (result && newOffset >= need) {
      if (newOffset === this.length) this.atEnd.set(this.uploadId, result.detected);
      else await this.deps.repo.setUploadType(this.uploadId, result.detected);
    } else {
      // Keep what storage holds of the head for the next PATCH (or for the finish to detect).
      await this.deps.repo.setUploadHead(this.uploadId, Buffer.concat(this.#chunks).subarray(0, Math.min(newOffset, need)));
    }
    return null;
  }
}

/** Shared: an upload's first write starts from nothing, and holds nothing for it. */
const NO_BYTES = Buffer.alloc(0);

/** The upload's bytes [0, offset): from its row, or read back from storage when the row lags. */
async function headBefore(deps: Pick<HookDeps, 'storage'>, row: UploadRow, offset: number): Promise<Buffer | null> {
  const head = row.head ?? NO_BYTES;
  if (offset === 0) return NO_BYTES;
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
