// The web page at `/` (clients/web): index.html and the bundle esbuild wrote to clients/web/dist
// (`npm run build:web`, run by prestart/pretest). Bundle files carry a content hash in their
// names, so they are cached for a year; index.html is revalidated on every visit so a new build
// is picked up at once.
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Hono } from 'hono';
import { AppError } from '../errors.ts';
import { contentSecurityPolicy, securityHeaders } from '../http/security-headers.ts';
import { PROJECT_ROOT } from '../paths.ts';

export const WEB_DIST_DIR = join(PROJECT_ROOT, 'clients/web/dist/');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

// hash-wasm compiles its WebAssembly from the bundle ('wasm-unsafe-eval'); Uppy shows thumbnails
// from blob: URLs and sets inline styles; the page may talk to an API on another origin.
const PAGE_POLICY = contentSecurityPolicy([
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  'connect-src *',
]);

export function webPageRoute(distDir = WEB_DIST_DIR): Hono {
  const app = new Hono();

  app.on(['GET', 'HEAD'], '/', securityHeaders(PAGE_POLICY), async (c) => {
    const html = await readDist(distDir, 'index.html');
    return c.body(c.req.header('cookie') === undefined ? html : markCookies(html), 200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-cache',
      Vary: 'Cookie',
    });
  });

  app.on(['GET', 'HEAD'], '/assets/:name', async (c) => {
    const name = c.req.param('name');
    const type = TYPES[extname(name)];
    // Only names esbuild writes (`app-<HASH>.js`, `.js.map`, `.js.LEGAL.txt`): no separators or dot segments.
    if (!type || !/^[A-Za-z0-9_-]+(\.[A-Za-z]+){1,2}$/.test(name)) throw new AppError('not_found', 'no such asset');
    const body = await readDist(distDir, `assets/${name}`, true);
    return c.body(body, 200, {
      'Content-Type': type,
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
    });
  });

  return app;
}

/**
 * The page cannot see an HttpOnly session cookie, so it is told whether the request carried any
 * cookie at all: without one, asking the API "who am I?" can only be refused, and a first visit
 * would open with a 401 in the browser's console.
 */
function markCookies(html: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(new TextDecoder().decode(html).replace('<body>', '<body data-has-cookie>'));
}

async function readDist(distDir: string, relative: string, asset = false): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await readFile(distDir + relative));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (asset) throw new AppError('not_found', 'no such asset');
    throw new AppError('unavailable', 'the web page is not built: run `npm run build:web`');
  }
}
