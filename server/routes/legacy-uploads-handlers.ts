// The handlers of the original Stream-Line server's upload calls (legacy-uploads.ts), loaded on the
// first request to one of them. Each call is translated onto a tus upload
// (legacy-tus.ts): `init` creates one, `part` writes its bytes at the upload's offset, `complete`
// finishes it and answers with the file record. docs/migrating.md maps each call to tus.
import { Hono, type Context } from 'hono';
import { describeRoute, resolver } from 'hono-openapi';
import { z } from 'zod';
import { sanitizeFilename, sanitizeFolder } from '../file-names.ts';
import { actingUser, mayAccess, type AuthEnv, type Caller } from '../auth/caller.ts';
import { visibleFile } from './visible-file.ts';
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';
import { commonProblems, fileRecordSchema, jsonResponse, problemResponse } from '../http/api-responses.ts';
import { isValidUploadId } from '../storage/keys.ts';
import { toFileRecord } from './file-record.ts';
import { LEGACY_ROUTES } from './api-route-paths.ts';
import type { LegacyParts, Repository } from '../db/contract.ts';
import type { AppFetch } from './legacy-tus.ts';
import { decodeBase64, readJsonBody } from './legacy-body.ts';
import { InnerRefusal, refusalResponse, tusClient, type TusClient } from './legacy-tus.ts';
import { writePart } from './legacy-part-writer.ts';

const text = z.string().max(4096);
const meta = z.looseObject({ user_id: text.optional(), filename: text.optional(), folder: text.optional() });
const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hexadecimal characters');

const initSchema = z.looseObject({
  mode: z.enum(['single', 'chunked'], 'mode must be "single" or "chunked" (one file per init)').optional(),
  files: z.array(z.looseObject({
    name: text.min(1, 'name must not be empty'),
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    mime: text.optional(),
    sha256: sha256.optional(),
  }), 'files must be an array of {name, size, mime}').length(1, 'files must hold exactly one file: send one init per file'),
  folder: text.optional(),
  sha256: sha256.optional(),
  user_id: text.optional(),
  meta: meta.optional(),
});
const uploadId = z.string().refine(isValidUploadId, 'uploadId must be an id that init handed out');
const partSchema = z.looseObject({
  uploadId,
  partNumber: z.number().int().min(0).max(1_000_000),
  chunkBase64: z.string().optional(),
  data: z.string().optional(),
}).refine((body) => (body.chunkBase64 ?? body.data) !== undefined, 'chunkBase64 is required');
const completeSchema = z.looseObject({
  uploadId,
  parts: z.array(z.looseObject({ data: z.string().optional(), chunkBase64: z.string().optional() })).max(10_000).optional(),
  meta: meta.optional(),
  sha256: sha256.optional(),
});

const INIT_SHAPE = '{"mode": "single"|"chunked", "files": [{"name", "size", "mime"}], "folder"?, "meta"?: {"user_id"?}}';
const PART_SHAPE = '{"uploadId", "partNumber", "chunkBase64"}';
const COMPLETE_SHAPE = '{"uploadId", "parts"?: [{"data"}], "meta"?: {"filename", "folder"}, "sha256"?}';

const jsonBody = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema: resolver(schema) } } });
const refusals = { 400: problemResponse('bad body'), 404: problemResponse('no such upload of yours'), 413: problemResponse('body too large, or over quota'), ...commonProblems };

export interface LegacyUploadDeps {
  repo: Repository;
  parts: LegacyParts;
  fetchApp: AppFetch;
  maxBodyBytes: number;
}

export function legacyUploadHandlers(deps: LegacyUploadDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.on(LEGACY_ROUTES.init.method, LEGACY_ROUTES.init.path, describeRoute({
    tags: ['original API'],
    summary: 'Original API: start an upload (a tus upload underneath)',
    requestBody: jsonBody(initSchema),
    responses: {
      200: jsonResponse('the upload', z.object({ uploadId: z.string(), upload_url: z.string(), offset: z.number().int(), size: z.number().int(), fileKey: z.string().optional() })),
      ...refusals,
    },
  }), (c) => answering(c, async (tus) => {
    const body = await readJsonBody(c.req.raw, initSchema, deps.maxBodyBytes, INIT_SHAPE);
    const file = body.files[0]!;
    const metadata: Record<string, string> = { filename: file.name, filetype: file.mime ?? '' };
    const folder = body.folder ?? body.meta?.folder;
    if (folder !== undefined) metadata.folder = folder;
    const digest = file.sha256 ?? body.sha256;
    if (digest !== undefined) metadata.sha256 = digest.toLowerCase();
    const caller = c.get('caller');
    // A user naming someone else is refused (403) here, as the files API does.
    const userId = actingUser(caller, body.meta?.user_id ?? body.user_id ?? c.req.query('user_id'));
    if (caller.kind === 'service') metadata.user_id = userId;
    const created = await tus.create(file.size, metadata);
    return c.json({
      uploadId: created.id,
      mode: body.mode ?? 'single',
      upload_url: created.location,
      offset: 0,
      size: file.size,
      ...(created.expires ? { expires_at: new Date(created.expires).toISOString() } : {}),
      ...(created.fileKey ? { fileKey: created.fileKey } : {}),
    });
  }));

  app.on(LEGACY_ROUTES.part.method, LEGACY_ROUTES.part.path, describeRoute({
    tags: ['original API'],
    summary: 'Original API: the next part of an upload, base64 (parts in order; a part sent again is not stored twice)',
    requestBody: jsonBody(partSchema),
    responses: {
      200: jsonResponse('what the upload holds', z.object({ uploadId: z.string(), partNumber: z.number().int(), offset: z.number().int(), size: z.number().int(), complete: z.boolean(), fileKey: z.string().optional() })),
      409: problemResponse('a part out of order'),
      ...refusals,
    },
  }), (c) => answering(c, async (tus) => {
    const body = await readJsonBody(c.req.raw, partSchema, deps.maxBodyBytes, PART_SHAPE);
    const bytes = decodeBase64((body.chunkBase64 ?? body.data)!, 'chunkBase64');
    const finished = await finishedFile(deps, c.get('caller'), body.uploadId);
    if (finished) {
      return c.json({ uploadId: body.uploadId, partNumber: body.partNumber, offset: finished.size, size: finished.size, complete: true, fileKey: finished.key });
    }
    await ownUpload(deps, c.get('caller'), body.uploadId);
    const after = await writePart(tus, deps.parts, body.uploadId, body.partNumber, bytes);
    return c.json({
      uploadId: body.uploadId,
      partNumber: body.partNumber,
      offset: after.offset,
      size: after.length,
      complete: after.fileKey !== null,
      ...(after.fileKey ? { fileKey: after.fileKey } : {}),
    });
  }));

  app.on(LEGACY_ROUTES.complete.method, LEGACY_ROUTES.complete.path, describeRoute({
    tags: ['original API'],
    summary: 'Original API: finish an upload (optionally sending its bytes as parts[]) and get the file record',
    requestBody: jsonBody(completeSchema),
    responses: {
      200: jsonResponse('the file record, with fileKey', fileRecordSchema),
      409: problemResponse('bytes still missing'),
      460: problemResponse('sha256 does not match the bytes received'),
      ...refusals,
    },
  }), (c) => answering(c, async (tus) => {
    const body = await readJsonBody(c.req.raw, completeSchema, deps.maxBodyBytes, COMPLETE_SHAPE);
    const caller = c.get('caller');
    let file = await finishedFile(deps, caller, body.uploadId);
    if (!file) {
      const upload = await ownUpload(deps, caller, body.uploadId);
      sameMetadata(body.meta, upload);
      let state = await tus.offset(body.uploadId);
      // parts[] is the whole file from its first byte: what the upload already holds (sent with
      // /part before, as some clients do) is not written again.
      let position = 0;
      for (const [index, part] of (body.parts ?? []).entries()) {
        const bytes = decodeBase64(part.data ?? part.chunkBase64 ?? '', `parts[${index}].data`);
        const end = position + bytes.length;
        if (end > state.offset && state.fileKey === null) {
          const written = await tus.write(body.uploadId, state.offset, bytes.subarray(state.offset - position));
          state = { ...state, offset: written.offset, fileKey: written.fileKey };
        }
        position = end;
      }
      if (state.offset < state.length) {
        throw new AppError('upload_incomplete', `the upload holds ${state.offset} of its ${state.length} bytes: send the rest with /v1/files/part or in parts[]`);
      }
      file = await deps.parts.fileOfUpload(body.uploadId);
      if (!file) throw new AppError('upload_incomplete', 'the upload holds every byte but is not finished yet; retry shortly');
    }
    sameMetadata(body.meta, file);
    if (body.sha256 !== undefined && body.sha256.toLowerCase() !== file.sha256) {
      // As for a tus upload whose declared sha256 does not match: the data is discarded.
      await tus.deleteFile(file.key);
      throw new AppError('checksum_mismatch', 'sha256 does not match the bytes received; the file was discarded');
    }
    return c.json({ fileKey: file.key, ...toFileRecord(file) });
  }));

  async function answering(c: Context<AuthEnv>, handler: (tus: TusClient) => Promise<Response>): Promise<Response> {
    try {
      return await handler(tusClient(c, deps.fetchApp));
    } catch (error) {
      if (error instanceof InnerRefusal) return refusalResponse(error);
      throw error;
    }
  }

  return app;
}

/** The caller's unfinished upload, or 404 (someone else's upload is indistinguishable from none). */
async function ownUpload(deps: LegacyUploadDeps, caller: Caller, id: string) {
  const upload = await deps.repo.getUpload(id);
  if (!upload || !mayAccess(caller, upload.user_id)) throw new AppError('not_found', 'no such upload');
  return upload;
}

async function finishedFile(deps: LegacyUploadDeps, caller: Caller, id: string): Promise<FileRow | undefined> {
  return visibleFile(caller, await deps.parts.fileOfUpload(id));
}

/**
 * The file keeps the name and folder given at init (a tus upload's metadata is fixed at creation).
 * A complete naming others is refused rather than silently ignored; a service naming another user
 * is told the upload does not exist.
 */
function sameMetadata(given: z.output<typeof meta> | undefined, recorded: { user_id: string; filename: string; folder: string }): void {
  if (!given) return;
  if (given.user_id !== undefined && given.user_id !== recorded.user_id) throw new AppError('not_found', 'no such upload');
  if (given.filename !== undefined && sanitizeFilename(given.filename) !== recorded.filename) {
    throw new AppError('invalid_parameter', `meta.filename differs from the name given at init (${JSON.stringify(recorded.filename)})`);
  }
  if (given.folder !== undefined && sanitizeFolder(given.folder) !== recorded.folder) {
    throw new AppError('invalid_parameter', `meta.folder differs from the folder given at init (${JSON.stringify(recorded.folder)})`);
  }
}
