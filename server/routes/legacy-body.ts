// Request bodies of the original Stream-Line API: JSON carrying file bytes as base64, so a body is
// read whole. It is read against a cap (LEGACY_API_MAX_BODY_BYTES) and refused as soon as it passes
// it, before it is ever held in full.
import type { z } from 'zod';
import { AppError } from '../errors.ts';

export async function readJsonBody<S extends z.ZodType>(request: Request, schema: S, maxBytes: number, shape: string): Promise<z.output<S>> {
  const tooLarge = () =>
    new AppError('body_too_large', `the body is larger than ${maxBytes} bytes: send the file in several parts (or over tus at /v1/uploads)`);
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      // A client that goes away mid-body: nothing was written yet, and nobody reads the answer.
      const { done, value } = await reader.read().catch(() => {
        throw new AppError('bad_request', 'the request body ended before its end');
      });
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new AppError('bad_request', `the body must be JSON: ${shape}`);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    throw new AppError('invalid_parameter', `${where}${first?.message ?? 'invalid body'} (expected ${shape})`);
  }
  return parsed.data;
}

// Standard or URL-safe alphabet, padded or not (Python's b64encode, JavaScript's btoa, Buffer).
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Strict base64: Buffer.from would silently skip stray characters and store different bytes. */
export function decodeBase64(value: string, name: string): Buffer {
  if (!BASE64.test(value) || value.replace(/=+$/, '').length % 4 === 1) {
    throw new AppError('invalid_parameter', `${name} must be base64`);
  }
  return Buffer.from(value, 'base64');
}
