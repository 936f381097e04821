// Parameter schemas are declared once, with zod, on the route itself: the same schema validates
// the request (hono-openapi's validator) and describes it in the OpenAPI document. A refusal is
// our problem+json `invalid_parameter` (errors.ts), never the library's own error shape.
import type { ValidationTargets } from 'hono';
import { validator } from 'hono-openapi';
import { z } from 'zod';
import { AppError } from '../errors.ts';

export function validated<S extends z.ZodType, T extends keyof ValidationTargets>(target: T, schema: S) {
  return validator(target, schema, (result) => {
    if (!result.success) {
      const first = (result.error as ReadonlyArray<{ message: string }>)[0];
      throw new AppError('invalid_parameter', first?.message ?? `invalid ${target}`);
    }
  });
}

/** A decimal query parameter within bounds, kept a string on the wire (as clients send it). */
export function wholeNumber(name: string, min: number, max: number, unit = '') {
  const message = `${name} must be a whole number${unit} from ${min} to ${max}`;
  return z
    .string()
    .regex(/^\d+$/, message)
    .refine((raw) => Number(raw) >= min && Number(raw) <= max, message)
    .transform(Number)
    .meta({ description: message });
}

export const problemSchema = z
  .object({
    type: z.string().meta({ example: 'urn:stream-line:problem:not_found' }),
    title: z.string(),
    status: z.number().int(),
    code: z.string().meta({ description: 'Stable error code (server/errors.ts)' }),
    detail: z.string().optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });
