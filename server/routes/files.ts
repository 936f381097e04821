// Files API (SPEC): list, metadata, delete, usage. Keys contain slashes and may arrive raw or
// percent-encoded, so they are read from the raw path rather than from a route parameter.
import { Hono, type Context } from 'hono';
import type { HookDeps } from '../../hooks/deps.ts';
import { deleteFile } from '../../hooks/finalize.ts';
import { actingUser, mayAccess, type AuthEnv } from '../auth/caller.ts';
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';
import { parseKey } from '../storage/keys.ts';
import { toFileRecord } from './file-record.ts';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;

export function fileRoutes(deps: HookDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.get('/files/all', (c) => {
    const userId = actingUser(c.get('caller'), c.req.query('user_id'));
    const limit = parseLimit(c.req.query('limit'));
    const after = parseCursor(c.req.query('cursor'));
    const folder = c.req.query('folder');
    const rows = deps.repo.listFiles({ userId, folder: folder === undefined ? undefined : normalizeFolder(folder), after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const next_cursor = rows.length > limit && last ? encodeCursor(last) : null;
    return c.json({ files: page.map(toFileRecord), next_cursor });
  });

  app.get('/files/metadata/*', (c) => c.json(toFileRecord(ownedFile(c, deps, '/v1/files/metadata/'))));

  app.delete('/files/*', async (c) => {
    const file = ownedFile(c, deps, '/v1/files/');
    await deleteFile(deps, file);
    return c.body(null, 204);
  });

  app.get('/usage', (c) => {
    const userId = actingUser(c.get('caller'), c.req.query('user_id'));
    return c.json({ ...deps.repo.usage(userId), quota_bytes: deps.quotaBytes });
  });

  return app;
}

/** The ready file named by the rest of the path, if the caller may see it; 404 otherwise. */
export function ownedFile(c: Context<AuthEnv>, deps: Pick<HookDeps, 'repo'>, prefix: string): FileRow {
  const key = keyFromPath(new URL(c.req.url).pathname, prefix);
  const file = key === null ? undefined : deps.repo.getFile(key);
  if (!file || file.state !== 'ready' || !mayAccess(c.get('caller'), file.user_id)) {
    throw new AppError('not_found', 'no such file');
  }
  return file;
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

function normalizeFolder(folder: string): string {
  return folder.trim().replace(/^\/+|\/+$/g, '');
}

function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIMIT) {
    throw new AppError('invalid_parameter', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  return Number(raw);
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
