// GET /healthz: {status, disk, db, storage}; 503 when any check fails, so a load balancer stops
// sending uploads to an instance whose disk is full or whose database is unreachable.
// GET /healthz/live: 200 whenever the process answers (what the Caddyfile's health check asks).
// With virus scanning on, `scan` reports clamd and the queue without ever failing the check: while
// clamd is away files wait as pending, and the instance still takes uploads and serves clean files.
// `files.damaged` counts records whose stored bytes were found missing or of another size
// (storage/damage.ts) and not yet repaired: an operator's signal (npm run check-storage) that
// never fails the check either, since every other file is still served.
import { statfs } from 'node:fs/promises';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { Logger } from 'pino';
import type { Repository } from '../db/contract.ts';
import type { Storage } from '../storage/types.ts';

/** Below this much free space the disk check fails: uploads would start failing with ENOSPC. */
export const MIN_FREE_BYTES = 256 * 1024 * 1024;

export function healthRoute(deps: {
  dataDir: string;
  repo: Repository;
  storage: Storage;
  scan?: { health(): Promise<{ clamd: 'up' | 'down'; queue_depth: number }> } | undefined;
  log: Logger;
}): Hono {
  const app = new Hono();
  // Liveness for a load balancer: the process answers HTTP. Checks nothing else, so a lone instance
  // whose disk is nearly full still gets the downloads and deletions that would free it (Caddyfile).
  app.get('/live', describeRoute({
    tags: ['operations'],
    summary: 'The process answers: 200 {status: "ok"}, with no other check',
    security: [],
    responses: { 200: { description: '{status: "ok"}' } },
  }), (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json({ status: 'ok' });
  });
  app.get('/', describeRoute({
    tags: ['operations'],
    summary: 'Disk, database and storage checks; 503 when one fails',
    security: [],
    responses: { 200: { description: '{status: "ok", disk, db, storage, files: {damaged}, scan?: {clamd: "up"|"down", queue_depth}}' }, 503: { description: '{status: "fail", …}' } },
  }), async (c) => {
    const [disk, db, storage, scan] = await Promise.all([
      statfs(deps.dataDir).then(
        (s) => {
          const free_bytes = s.bavail * s.bsize;
          return { ok: free_bytes >= MIN_FREE_BYTES, free_bytes, total_bytes: s.blocks * s.bsize };
        },
        (error: unknown) => failed(deps.log, 'disk', error),
      ),
      Promise.resolve()
        .then(async () => ({ ok: await deps.repo.ping() }))
        .catch((error: unknown) => failed(deps.log, 'db', error)),
      deps.storage.health().then(
        () => ({ ok: true, kind: deps.storage.kind }),
        (error: unknown) => ({ ...failed(deps.log, 'storage', error), kind: deps.storage.kind }),
      ),
      deps.scan?.health().catch((error: unknown) => void deps.log.warn({ err: error }, 'scan health report failed')),
    ]);
    const ok = disk.ok && db.ok && storage.ok;
    const files = db.ok ? { damaged: await deps.repo.countDamagedFiles() } : undefined;
    c.header('Cache-Control', 'no-store');
    return c.json({ status: ok ? 'ok' : 'fail', disk, db, storage, ...(files ? { files } : {}), ...(scan ? { scan } : {}) }, ok ? 200 : 503);
  });
  return app;
}

function failed(log: Logger, check: string, error: unknown): { ok: false } {
  log.warn({ err: error, check }, 'health check failed');
  return { ok: false };
}
