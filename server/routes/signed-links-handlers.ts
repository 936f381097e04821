// Signed links' handlers (docs/api.md, "Signed links"), loaded on the first request to one of them
// (signed-links.ts): owners mint expiring HMAC-signed URLs; anyone holding one gets the bytes with
// Range, validators and the original filename — and nothing else.
//
// Byte-sending offload. Behind our Caddy (a request carrying EDGE_SECRET) with local storage, this
// route still makes every decision — signature, expiry, the file's existence, preconditions
// against the SHA-256 ETag, which range — and then answers with no body but OFFLOAD_PATH_HEADER
// naming the file (as nginx's X-Accel-Redirect) and OFFLOAD_RANGE_HEADER naming the resolved
// range. The Caddyfile's `handle_response` sends those bytes with file_server (sendfile) and our
// headers, and never lets either header reach the client. Any other request gets the bytes from
// Node: a forged X-Edge-Secret only fails the constant-time comparison.
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { commonProblems, jsonResponse, problemResponse } from '../http/api-responses.ts';
import { validated, wholeNumber } from '../http/validate.ts';
import { AppError } from '../errors.ts';
import type { AuthEnv } from '../auth/caller.ts';
import { requireVisibleFile } from './visible-file.ts';
import { evaluatePreconditions, rangeAllowedByIfRange, strongEtag, type Validators } from '../http/conditional.ts';
import { executesInBrowser } from '../http/media-type.ts';
import { assertServable } from '../scan/gate.ts';
import { contentDisposition } from '../http/content-disposition.ts';
import { MAX_LINK_TTL_SECONDS } from '../config.ts';
import { decodeKeyFromPath, encodeKeyForPath, signLink, verifyLink, type LinkDisposition } from '../http/link-signing.ts';
import { contentRange, resolveRange } from '../http/range.ts';
import type { RequestEnv } from '../http/request-context.ts';
import type { HttpBindings } from '@hono/node-server';
import { fileResponse, isUnreadFileStream } from '../http/send-file.ts';
import { streamResponse } from '../http/send-stream.ts';
import { assertIntact, damageError } from '../storage/damage.ts';
import { SIGNED_LINK_ROUTES } from './api-route-paths.ts';
import type { Repository } from '../db/contract.ts';
import type { DamageReporter } from '../storage/damage.ts';
import type { Storage } from '../storage/types.ts';

/** Internal to the server ↔ Caddy hop: the file under DATA_DIR/users, and the range to send. */
export const OFFLOAD_PATH_HEADER = 'X-Sl-Offload-Path';
export const OFFLOAD_RANGE_HEADER = 'X-Sl-Offload-Range';
const OFFLOAD_ROOT = 'users/';

export interface SignedLinkDeps {
  repo: Repository;
  storage: Storage;
  signingKeys: Buffer[];
  defaultTtlSeconds: number;
  publicUrl: () => string;
  now: () => number;
  /** Whether requests from the edge may be answered with a file for the proxy to send. */
  offload?: boolean;
  /** Virus scanning is on: only files clamd called clean are served (scan/gate.ts). */
  scanning: boolean;
  /** Marks records whose stored bytes turn out missing or of another size (storage/damage.ts). */
  damage: DamageReporter;
}

export function signUrl(deps: SignedLinkDeps, key: string, ttlSeconds: number, disposition: LinkDisposition): { url: string; expires_at: string } {
  const exp = Math.floor(deps.now() / 1000) + ttlSeconds;
  const sig = signLink({ key, exp, disposition }, deps.signingKeys[0]!);
  const query = new URLSearchParams({ exp: String(exp), disposition, sig });
  return { url: `${deps.publicUrl()}/get/${encodeKeyForPath(key)}?${query}`, expires_at: new Date(exp * 1000).toISOString() };
}

const signedUrlQuery = z.object({
  key: z.string().optional().meta({ description: 'the file key (required; a missing or foreign key is 404)' }),
  ttl: wholeNumber('ttl', 1, MAX_LINK_TTL_SECONDS, ' of seconds').optional().meta({ description: 'link lifetime in seconds (default SIGNED_URL_TTL_SECONDS)' }),
  disposition: z.enum(['attachment', 'inline'], 'disposition must be "inline" or "attachment"').optional(),
});

/** GET /v1/files/signed-url (behind auth). */
export function signedUrlHandlers(deps: SignedLinkDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.on(
    SIGNED_LINK_ROUTES.url.method,
    SIGNED_LINK_ROUTES.url.path,
    describeRoute({
      tags: ['sharing'],
      summary: 'An expiring signed link to one file, for anyone to download (GET /get/{encoded})',
      responses: {
        200: jsonResponse('the link', z.object({ url: z.string(), expires_at: z.string().meta({ format: 'date-time' }) })),
        400: problemResponse('bad parameter'),
        404: problemResponse('no such file of yours'),
        410: problemResponse('file_missing: the stored bytes are gone (docs/storage-check.md)'),
        500: problemResponse('file_damaged: the stored bytes do not match the record'),
        ...commonProblems,
      },
    }),
    validated('query', signedUrlQuery),
    async (c) => {
      const query = c.req.valid('query');
      const file = requireVisibleFile(c.get('caller'), query.key === undefined ? undefined : await deps.repo.getFile(query.key));
      if (file.damage) throw damageError(file.damage);
      return c.json(signUrl(deps, file.key, query.ttl ?? deps.defaultTtlSeconds, query.disposition ?? 'attachment'));
    },
  );
  return app;
}

/** GET and HEAD /get/{base64url(key)}?exp=&disposition=&sig= (no account needed). */
export function signedGetHandlers(deps: SignedLinkDeps): Hono<RequestEnv> {
  const app = new Hono<RequestEnv>();
  app.on([...SIGNED_LINK_ROUTES.get.method], SIGNED_LINK_ROUTES.get.path, describeRoute({
    tags: ['sharing'],
    summary: 'The bytes of a signed link (no account): Range, ETag (SHA-256), conditional requests',
    parameters: [
      { name: 'exp', in: 'query', required: true, schema: { type: 'string' } },
      { name: 'disposition', in: 'query', required: true, schema: { type: 'string', enum: ['attachment', 'inline'] } },
      { name: 'sig', in: 'query', required: true, schema: { type: 'string' } },
    ],
    security: [],
    responses: {
      200: { description: 'the file' },
      206: { description: 'one byte range' },
      304: { description: 'not modified' },
      403: problemResponse('invalid_signature; infected or scan_failed while virus scanning is on'),
      409: problemResponse('scan_pending: the virus scan has not finished (Retry-After)'),
      404: problemResponse('the file was deleted'),
      410: problemResponse('link_expired; file_missing: the stored bytes are gone (docs/storage-check.md)'),
      500: problemResponse('file_damaged: the stored bytes do not match the record'),
      416: problemResponse('range_not_satisfiable'),
      429: problemResponse('rate_limited'),
    },
  }), async (c) => {
    const key = decodeKeyFromPath(c.req.param('encoded'));
    const verdict = key === null
      ? 'invalid'
      : verifyLink(
          { key, exp: c.req.query('exp') ?? '', disposition: c.req.query('disposition') ?? '', sig: c.req.query('sig') ?? '' },
          deps.signingKeys,
          Math.floor(deps.now() / 1000),
        );
    if (verdict === 'invalid') throw new AppError('invalid_signature', 'this link is not valid');
    if (verdict === 'expired') throw new AppError('link_expired', 'this link has expired; ask for a new one');
    const file = requireVisibleFile('signed-link', await deps.repo.getFile(key!), 'this file no longer exists');
    assertServable(file, deps.scanning);
    const offloading = deps.offload && c.get('fromEdge') && file.key.startsWith(OFFLOAD_ROOT);

    const size = file.size;
    const validators: Validators = { etag: strongEtag({ size, mtimeMs: file.created_at, sha256: file.sha256 }), lastModified: new Date(file.created_at) };
    const headers = new Headers({
      'Accept-Ranges': 'bytes',
      ETag: validators.etag,
      'Last-Modified': validators.lastModified.toUTCString(),
      'Cache-Control': 'private, no-transform',
      'X-Content-Type-Options': 'nosniff',
    });
    const precondition = evaluatePreconditions(c.req.raw.headers, validators);
    if (precondition === 'not-modified') return new Response(null, { status: 304, headers });
    if (precondition === 'precondition-failed') throw new AppError('precondition_failed', 'If-Match or If-Unmodified-Since did not match');

    const range = rangeAllowedByIfRange(c.req.raw.headers, validators) ? resolveRange(c.req.header('range'), size) : { kind: 'full' as const };
    if (range.kind === 'unsatisfiable') {
      throw new AppError('range_not_satisfiable', `the file has ${size} bytes`, { 'Content-Range': contentRange(range, size)! });
    }
    // What the bytes are, when their signature says so; the client's word otherwise (with nosniff,
    // a browser takes it as given). Content a browser would run in this origin (HTML, SVG, script,
    // by either type or by extension) never goes out inline, whatever the link asked for.
    const served = file.detected_type ?? file.content_type;
    const active = executesInBrowser(served, file.filename) || executesInBrowser(file.content_type);
    headers.set('Content-Type', served);
    headers.set('Content-Disposition', contentDisposition(file.filename, active ? 'attachment' : (c.req.query('disposition') as LinkDisposition)));
    const partial = range.kind === 'partial';
    headers.set('Content-Length', String(partial ? range.end - range.start + 1 : size));
    if (partial) headers.set('Content-Range', contentRange(range, size)!);
    const status = partial ? 206 : 200;
    if (offloading) {
      // Caddy's file_server recomputes Content-Length/Content-Range from the range it is given, and
      // checks the file itself: a stat here would only cost CPU
      // (bench/README.md, "Figures behind choices in the code").
      if (c.req.method === 'HEAD' || size === 0) return new Response(null, { status, headers });
      headers.delete('Content-Length');
      headers.delete('Content-Range');
      headers.set(OFFLOAD_PATH_HEADER, `/${file.key.slice(OFFLOAD_ROOT.length)}`);
      // Always present (Caddy leaves a placeholder of an absent header unreplaced): empty = whole file.
      headers.set(OFFLOAD_RANGE_HEADER, partial ? `bytes=${range.start}-${range.end}` : '');
      return new Response(null, { status, headers });
    }
    // The stored size is compared with the record before the status line goes out: a shorter file
    // would leave the client waiting for bytes promised by Content-Length (storage/damage.ts).
    if (c.req.method === 'HEAD' || size === 0) {
      await assertIntact(deps.repo, deps.damage, file, (await deps.storage.statFile(file.key))?.size ?? null);
      return new Response(null, { status, headers });
    }
    const span = partial ? { start: range.start, end: range.end } : { start: 0, end: size - 1 };
    const opened = await deps.storage.openSized(file.key, span);
    try {
      await assertIntact(deps.repo, deps.damage, file, opened?.storedSize ?? null);
    } catch (error) {
      opened?.body.destroy();
      throw error;
    }
    const sending = span.end - span.start + 1;
    // Shrunk while it is read: the response is cut (send-file.ts, send-stream.ts) and the record marked.
    const onShort = () => deps.damage.found(file, 'size_mismatch', null);
    const outgoing = (c.env as HttpBindings | undefined)?.outgoing;
    if (outgoing && isUnreadFileStream(opened!.body)) {
      return fileResponse(outgoing, status, headers, { file: opened!.body, start: span.start, length: sending, onShort });
    }
    return streamResponse(status, headers, opened!.body, { expected: sending, onShort });
  });
  return app;
}
