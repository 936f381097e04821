// The files API's handlers (docs/api.md "Files"): list, metadata, delete, usage, loaded on the first
// request to one of them (files.ts). Keys contain slashes and may arrive raw or percent-encoded, so
// they are read from the raw path rather than from a route parameter.
import { Hono, type Context } from 'hono';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { actingUser, type AuthEnv } from '../auth/caller.ts';
import { requireVisibleFile } from './visible-file.ts';
import type { Repository } from '../db/contract.ts';
import type { FileRow } from '../db/repo.ts';
import { commonProblems, fileRecordSchema, jsonResponse as json, problemResponse as problem } from '../http/api-responses.ts';
import { validated, wholeNumber } from '../http/validate.ts';
import { AppError } from '../errors.ts';
import { parseKey } from '../storage/keys.ts';
import { toFileRecord } from './file-record.ts';
import { FILE_ROUTES } from './api-route-paths.ts';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const STREAM_PAGE = 1000;

const userIdParam = z.string().optional().meta({ description: 'the user to act for (service token only)' });
const listQuery = z.object({
  folder: z.string().optional().meta({ description: 'one logical folder exactly (not its sub-folders)' }),
  limit: wholeNumber('limit', 1, MAX_LIMIT).optional().meta({ description: `page size (1 to ${MAX_LIMIT}); without limit and cursor the answer holds every file` }),
  cursor: z.string().optional().meta({ description: 'next_cursor of the previous page' }),
  user_id: userIdParam,
});

export interface FileRouteDeps {
  repo: Repository;
  quotaBytes: number;
  /** The lifecycle's deletion (Lifecycle.deleteFile): the bytes, then the record with its event. */
  deleteFile(file: FileRow, requestId: string): Promise<void>;
}

export function fileHandlers(deps: FileRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.on(
    FILE_ROUTES.list.method,
    FILE_ROUTES.list.path,
    describeRoute({
      tags: ['files'],
      summary: 'List files, newest first: a page with limit (and cursor); without either, every file (streamed)',
      responses: { 200: json('a page of files, or every file with next_cursor null', z.object({ files: z.array(fileRecordSchema), next_cursor: z.string().nullable() })), 400: problem('bad parameter'), ...commonProblems },
    }),
    validated('query', listQuery),
    async (c) => {
      const query = c.req.valid('query');
      const userId = actingUser(c.get('caller'), query.user_id);
      const folder = query.folder === undefined ? undefined : normalizeFolder(query.folder);
      if (query.limit === undefined && query.cursor === undefined) {
        // Clients of the original server ask for "all files" and read no cursor: they get every
        // file, streamed page by page as the client reads (memory does not grow with the count).
        // The first page is read before the answer starts: a database that cannot answer it gets a
        // problem (503 when it is unreachable), not a 200 cut short.
        const firstPage = await deps.repo.listFiles({ userId, folder, limit: STREAM_PAGE });
        c.header('Content-Type', 'application/json');
        return c.body(everyFile(deps.repo, userId, folder, firstPage));
      }
      const limit = query.limit ?? DEFAULT_LIMIT;
      const after = parseCursor(query.cursor);
      const rows = await deps.repo.listFiles({ userId, folder, after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      const next_cursor = rows.length > limit && last ? encodeCursor(last) : null;
      return c.json({ files: page.map(toFileRecord), next_cursor });
    },
  );

  app.on(
    FILE_ROUTES.metadata.method,
    FILE_ROUTES.metadata.path,
    describeRoute({
      tags: ['files'],
      summary: 'One file record (the key follows the prefix, raw or percent-encoded)',
      responses: { 200: json('the record', fileRecordSchema), 404: problem('no such file of yours'), ...commonProblems },
    }),
    async (c) => c.json(toFileRecord(await ownedFile(c, deps, '/v1/files/metadata/'))),
  );

  app.on(
    FILE_ROUTES.remove.method,
    FILE_ROUTES.remove.path,
    describeRoute({
      tags: ['files'],
      summary: 'Delete a file and its record, freeing quota',
      responses: { 200: json('deleted', z.object({ deleted: z.literal(true), key: z.string() })), 404: problem('no such file of yours'), ...commonProblems },
    }),
    async (c) => {
      const file = await ownedFile(c, deps, '/v1/files/');
      await deps.deleteFile(file, c.get('requestId'));
      // 200 with a body, not 204: clients of the original server check for 200.
      return c.json({ deleted: true, key: file.key });
    },
  );

  app.on(
    FILE_ROUTES.usage.method,
    FILE_ROUTES.usage.path,
    describeRoute({
      tags: ['files'],
      summary: 'Bytes stored, bytes reserved by unfinished uploads, and the quota',
      responses: { 200: json('usage', z.object({ used_bytes: z.number().int(), reserved_bytes: z.number().int(), quota_bytes: z.number().int() })), ...commonProblems },
    }),
    validated('query', z.object({ user_id: userIdParam })),
    async (c) => {
      const userId = actingUser(c.get('caller'), c.req.valid('query').user_id);
      return c.json({ ...(await deps.repo.usage(userId)), quota_bytes: deps.quotaBytes });
    },
  );

  return app;
}

/** The ready file named by the rest of the path, if the caller may see it; 404 otherwise. */
export async function ownedFile(c: Context<AuthEnv>, deps: Pick<FileRouteDeps, 'repo'>, prefix: string): Promise<FileRow> {
  const key = keyFromPath(new URL(c.req.url).pathname, prefix);
  return requireVisibleFile(c.get('caller'), key === null ? undefined : await deps.repo.getFile(key));
}

export function keyFromPath(pathname: string, prefix: string): string | null {
  if (!pathname.startsWith(prefix)) return null;
  let key: string;
  try {
    key = decodeURIComponent(pathname.slice(prefix.length));
  } catch {
    return null;
  }
  return parseKey(key) ? key : null;
}

/**
 * Newest first, one indexed page per read as the client reads: memory does not grow with the number
 * of files (bench/listing.ts). A page that cannot be read after the 200 went out errors the stream,
 * and the adapter cuts the connection: the client sees a failed transfer, never a short list.
 */
function everyFile(repo: Repository, userId: string, folder: string | undefined, firstPage: FileRow[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let after: { createdAt: number; key: string } | undefined;
  let pending: FileRow[] | undefined = firstPage;
  let first = true;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"files":['));
    },
    async pull(controller) {
      const rows = pending ?? (await repo.listFiles({ userId, folder, after, limit: STREAM_PAGE }));
      pending = undefined;
      const last = rows[rows.length - 1];
      if (last) {
        const page = JSON.stringify(rows.map(toFileRecord));
        controller.enqueue(encoder.encode((first ? '' : ',') + page.slice(1, -1)));
        first = false;
        after = { createdAt: last.created_at, key: last.key };
      }
      if (rows.length < STREAM_PAGE) {
        controller.enqueue(encoder.encode('],"next_cursor":null}'));
        controller.close();
      }
    },
  }, { highWaterMark: 1 });
}

function normalizeFolder(folder: string): string {
  return folder.trim().replace(/^\/+|\/+$/g, '');
}


// Cursors are opaque to clients: base64url of the last row's position in newest-first order.
function encodeCursor(row: FileRow): string {
  return Buffer.from(JSON.stringify([row.created_at, row.key])).toString('base64url');
}

function parseCursor(raw: string | undefined): { createdAt: number; key: string } | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(value) && Number.isSafeInteger(value[0]) && typeof value[1] === 'string') {
      return { createdAt: value[0] as number, key: value[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new AppError('invalid_parameter', 'cursor is not one this server handed out');
}
