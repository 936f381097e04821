// Response descriptions shared by the JSON API's routes (read into the OpenAPI document by
// hono-openapi): the file record, problem+json answers, and the refusals every authenticated route may give.
import { resolver } from 'hono-openapi';
import { z } from 'zod';
import { problemSchema } from './validate.ts';

export const fileRecordSchema = z
  .object({
    key: z.string().meta({ example: 'users/alice/2025/01/31/3f2a9c0e4b1d47a8a6f0c2d9e8b7a615.jpg' }),
    user_id: z.string(),
    folder: z.string().meta({ example: 'main/pictures' }),
    filename: z.string(),
    content_type: z.string().meta({ description: 'as declared by the client (Upload-Metadata filetype)' }),
    detected_type: z.string().nullable().meta({ description: 'detected from the first bytes; null when no signature matched (plain text, CSV, ...)' }),
    category: z.enum(['image', 'video', 'audio', 'document', 'archive', 'other']).nullable(),
    size: z.number().int(),
    sha256: z.string().meta({ description: 'lowercase hex' }),
    created_at: z.string().meta({ format: 'date-time' }),
    scan_status: z.enum(['pending', 'scanning', 'clean', 'infected', 'error']).nullable()
      .meta({ description: 'virus scan verdict; null when the file was recorded while scanning was off' }),
    scan_signature: z.string().nullable().meta({ description: 'the signature found, when infected' }),
  })
  .meta({ id: 'FileRecord' });

export const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: resolver(problemSchema) } } });
export const jsonResponse = (description: string, schema: z.ZodType) => ({ description, content: { 'application/json': { schema: resolver(schema) } } });
export const commonProblems = { 401: problemResponse('no or bad credentials'), 429: problemResponse('too many failed authentications') };
