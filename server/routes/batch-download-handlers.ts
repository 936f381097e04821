// Batch ZIP handlers (docs/api.md, "Batch ZIP"), loaded on the first request to one of them
// (batch-download.ts): an owner names up to MAX_BATCH_KEYS of their files and gets an
// expiring signed link; whoever opens it receives one ZIP streamed as it is built.
//
// A file deleted between the link and the download, or whose stored bytes are missing or of
// another size than its record (then marked, storage/damage.ts), is left out, and the archive
// gains a `MISSING.txt` note saying how many were; every file is checked before the first byte, so
// Content-Length stays exact. (One that vanishes or shrinks while the archive streams cuts the
// download; zip-stream.ts explains why that cannot be a complete-looking archive.)
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { describeRoute, resolver } from 'hono-openapi';
import { z } from 'zod';
import { Readable } from 'node:stream';
import type { AuthEnv } from '../auth/caller.ts';
import { requireVisibleFile, visibleFile } from './visible-file.ts';
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';
import { commonProblems, jsonResponse, problemResponse } from '../http/api-responses.ts';
import { assertServable } from '../scan/gate.ts';
import { contentDisposition } from '../http/content-disposition.ts';
import { signBatchToken, verifyBatchToken } from '../http/link-signing.ts';
import { streamResponse, streamToResponse } from '../http/send-stream.ts';
import { damageError, damageOf } from '../storage/damage.ts';
import { createZipStream, type ZipEntryInput } from '../zip/zip-stream.ts';
import { BATCH_ROUTES, MAX_BATCH_KEYS } from './api-route-paths.ts';
import type { SignedLinkDeps } from './signed-links-handlers.ts';

/** The request body: validated with this schema, and described by it in the OpenAPI document. */
const batchRequestSchema = z.object({
  keys: z.array(z.string(), 'keys must be a non-empty array of file keys').min(1, 'keys must be a non-empty array of file keys').meta({ description: `1 to ${MAX_BATCH_KEYS} keys of one user's files` }),
  name: z.string('name must be a string of 1 to 200 characters').min(1, 'name must be a string of 1 to 200 characters').max(200, 'name must be a string of 1 to 200 characters').optional().meta({ description: 'archive name (.zip added)' }),
});

/** POST /v1/files/batch-download (behind auth). */
/** What a signed link needs (the same keys, gate and damage marks), with the batch link's lifetime. */
export type BatchDeps = Omit<SignedLinkDeps, 'defaultTtlSeconds' | 'offload'> & { ttlSeconds: number };

export function batchTokenHandlers(deps: BatchDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.on(BATCH_ROUTES.token.method, BATCH_ROUTES.token.path, describeRoute({
    tags: ['sharing'],
    summary: 'An expiring link to one streamed ZIP of several files',
    requestBody: { required: true, content: { 'application/json': { schema: resolver(batchRequestSchema) } } },
    responses: {
      200: jsonResponse('the link', z.object({ token: z.string(), url: z.string(), expires_at: z.string().meta({ format: 'date-time' }) })),
      400: problemResponse('bad body'),
      404: problemResponse('a key names no file of yours'),
      410: problemResponse('file_missing: a file\'s stored bytes are gone (docs/storage-check.md)'),
      500: problemResponse('file_damaged: a file\'s stored bytes do not match its record'),
      ...commonProblems,
    },
  }), async (c) => {
    const body = await c.req.json().catch(() => {
      throw new AppError('bad_request', 'the body must be JSON: {"keys": [...], "name"?: "..."}');
    });
    const { keys, name } = parseBatchRequest(body);
    const caller = c.get('caller');
    const files: FileRow[] = [];
    for (const key of keys) {
      // Naming no key: a foreign key and a missing one look the same.
      const file = requireVisibleFile(caller, await deps.repo.getFile(key), 'one or more keys name no file of yours');
      if (file.damage) throw damageError(file.damage);
      // The caller's own key may be named: a batch that cannot be served is refused up front.
      assertServable(file, deps.scanning);
      files.push(file);
    }
    const owner = files[0]!.user_id;
    if (files.some((f) => f.user_id !== owner)) throw new AppError('invalid_parameter', 'a batch holds the files of one user');
    const exp = Math.floor(deps.now() / 1000) + deps.ttlSeconds;
    let token: string;
    try {
      token = signBatchToken({ userId: owner, keys, exp, ...(name === undefined ? {} : { name }) }, deps.signingKeys[0]!);
    } catch (error) {
      if (error instanceof RangeError) throw new AppError('invalid_parameter', 'too many keys for one link; split the batch');
      throw error;
    }
    return c.json({ token, url: `${deps.publicUrl()}/v1/files/batch-download/${token}`, expires_at: new Date(exp * 1000).toISOString() });
  });
  return app;
}

function parseBatchRequest(body: unknown): { keys: string[]; name: string | undefined } {
  const parsed = batchRequestSchema.safeParse(body);
  if (!parsed.success) throw new AppError('invalid_parameter', parsed.error.issues[0]?.message ?? 'invalid body');
  const unique = [...new Set(parsed.data.keys)];
  if (unique.length > MAX_BATCH_KEYS) throw new AppError('invalid_parameter', `at most ${MAX_BATCH_KEYS} keys per batch`);
  return { keys: unique, name: parsed.data.name };
}

/** GET /v1/files/batch-download/{token} (no account needed). */
export function batchDownloadHandlers(deps: BatchDeps): Hono {
  const app = new Hono();
  app.on([...BATCH_ROUTES.download.method], BATCH_ROUTES.download.path, describeRoute({
    tags: ['sharing'],
    summary: 'The ZIP of a batch link (no account): streamed, stored entries, exact Content-Length',
    security: [],
    responses: {
      200: { description: 'application/zip' },
      403: problemResponse('invalid_signature; infected or scan_failed while virus scanning is on'),
      409: problemResponse('scan_pending: the virus scan has not finished (Retry-After)'),
      404: problemResponse('every file was deleted'),
      410: problemResponse('link_expired'),
      429: problemResponse('rate_limited'),
    },
  }), async (c) => {
    const verdict = verifyBatchToken(c.req.param('token'), deps.signingKeys, Math.floor(deps.now() / 1000));
    if (!verdict.ok && verdict.reason === 'expired') throw new AppError('link_expired', 'this download link has expired');
    if (!verdict.ok) throw new AppError('invalid_signature', 'this download link is not valid');
    const { payload } = verdict;
    const present: FileRow[] = [];
    // The link acts for the user who made it: only their files, and only while they exist.
    const maker = { kind: 'user', userId: payload.userId } as const;
    for (const key of payload.keys) {
      const file = visibleFile(maker, await deps.repo.getFile(key));
      if (!file) continue;
      const storedSize = (await deps.storage.statFile(key))?.size ?? null;
      const damage = damageOf(file.size, storedSize);
      if (damage) {
        // Re-read: a record deleted while the stat ran is a deletion, not damage.
        if ((await deps.repo.getFile(key))?.state === 'ready') await deps.damage.found(file, damage, storedSize);
        continue;
      }
      if (file.damage) await deps.damage.healed(file);
      // Verdicts may have changed since the link was made (scanning turned on): refuse, never skip.
      assertServable(file, deps.scanning);
      present.push(file);
    }
    if (present.length === 0) throw new AppError('not_found', 'every file of this download has been deleted');

    const entries: ZipEntryInput[] = present.map((file) => ({
      folder: file.folder,
      filename: file.filename,
      mtime: new Date(file.created_at),
      size: file.size,
      contentType: file.detected_type ?? file.content_type,
      open: () => deps.storage.openFile(file.key),
      onWrongSize: () => deps.damage.found(file, 'size_mismatch', null),
    }));
    const missing = payload.keys.length - present.length;
    if (missing > 0) entries.push(noteEntry(`${missing} of the ${payload.keys.length} files in this download were deleted, or their stored bytes were lost, after its link was made.\n`));
    const zip = createZipStream(entries);
    const headers = new Headers({
      'Content-Type': 'application/zip',
      'Content-Disposition': contentDisposition(archiveName(payload.name, deps.now()), 'attachment'),
      'Cache-Control': 'private, no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    if (zip.size !== null) headers.set('Content-Length', String(zip.size));
    if (c.req.method === 'HEAD') {
      zip.stream.destroy();
      return new Response(null, { status: 200, headers });
    }
    // Written to the node response itself where there is one, so that the files' chunks, read into
    // reused buffers (zip/file-chunks.ts), go back to the pool once sent (http/send-stream.ts).
    const outgoing = (c.env as HttpBindings | undefined)?.outgoing;
    if (outgoing) return streamToResponse(outgoing, 200, headers, zip.stream, { expected: zip.size });
    return streamResponse(200, headers, zip.stream, { expected: zip.size });
  });
  return app;
}

function noteEntry(text: string): ZipEntryInput {
  const bytes = Buffer.from(text, 'utf8');
  return { folder: '', filename: 'MISSING.txt', mtime: new Date(), size: bytes.length, contentType: 'text/plain', open: async () => Readable.from([bytes]) };
}

function archiveName(name: string | undefined, now: number): string {
  const base = name ?? `files-${new Date(now).toISOString().slice(0, 10)}`;
  return /\.zip$/i.test(base) ? base : `${base}.zip`;
}
