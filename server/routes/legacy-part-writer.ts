// One part of the original API written into its tus upload. The original server stored parts
// apart and joined them at the end; here they are appended in order at the upload's offset, so a
// part is checked against the one before it. The part being written is remembered first: a part
// sent again after a lost answer is completed where the first attempt stopped, or acknowledged,
// never stored twice.
import type { LegacyParts } from '../db/contract.ts';
import { AppError } from '../errors.ts';
import type { TusClient } from './legacy-tus.ts';

export interface AfterPart {
  offset: number;
  length: number;
  fileKey: string | null;
}

export async function writePart(tus: TusClient, parts: LegacyParts, uploadId: string, partNumber: number, bytes: Buffer): Promise<AfterPart> {
  const state = await tus.offset(uploadId);
  if (state.fileKey !== null) return state;
  const start = await partStart(parts, uploadId, partNumber, bytes.length, state.offset);
  await parts.set(uploadId, { part_number: partNumber, start, length: bytes.length });
  const rest = bytes.subarray(state.offset - start);
  if (rest.length === 0) return state;
  const written = await tus.write(uploadId, state.offset, rest);
  return { offset: written.offset, length: state.length, fileKey: written.fileKey };
}

/** Where this part begins in the file, or a refusal naming the part that is expected. */
async function partStart(parts: LegacyParts, uploadId: string, partNumber: number, length: number, offset: number): Promise<number> {
  const last = await parts.get(uploadId);
  if (!last) {
    // The first part, numbered from 0 or from 1 by different clients: any other number is a part
    // sent before the first (parallel parts), which appended here would land at the file's start.
    if (offset === 0 && partNumber > 1) {
      throw new AppError('part_out_of_order', `parts are written in order: expected part 0 or 1 first, got ${partNumber}`);
    }
    // Or a part after bytes that arrived over tus: it continues at their end.
    return offset;
  }
  const lastEnd = last.start + last.length;
  if (partNumber === last.part_number) {
    if (offset === last.start) return offset;
    if (offset > last.start && offset <= lastEnd && length === last.length) return last.start;
    throw new AppError('part_out_of_order', `part ${partNumber} was already sent with ${last.length} bytes; send part ${partNumber + 1} next`);
  }
  if (partNumber !== last.part_number + 1) {
    throw new AppError('part_out_of_order', `parts are written in order: expected part ${last.part_number + 1} (or part ${last.part_number} again), got ${partNumber}`);
  }
  if (offset < lastEnd) {
    throw new AppError('part_out_of_order', `part ${last.part_number} holds ${offset - last.start} of its ${last.length} bytes: send it again first`);
  }
  if (offset > lastEnd) {
    // Bytes arrived over tus since: the part numbers no longer say where a part belongs.
    throw new AppError('part_out_of_order', `the upload holds ${offset} bytes, past the end of part ${last.part_number}: continue over tus at /v1/uploads`);
  }
  return offset;
}
