// GET /docs: the API document (document.ts) shown with Swagger UI served from node_modules — no CDN, so
// the page works offline and under a strict network policy. The document, and the JSON API's handlers
// it is generated from, load on its first request (routes/lazy-routes.ts says why).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';

const require = createRequire(import.meta.url);
const SWAGGER_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
};
const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Stream-Line Upload API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="api"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>`;
// A separate file, not an inline script: the page works under a CSP without 'unsafe-inline'.
const INIT = `window.ui = SwaggerUIBundle({ url: '/docs/openapi.json', dom_id: '#api', deepLinking: true });`;

export function docsRoute(describedApp: () => Hono<any, any, any>, version: string): Hono {
  const app = new Hono();
  let document: Promise<unknown> | undefined;
  app.get('/openapi.json', async (c) => {
    document ??= import('./document.ts').then((m) => m.openApiDocument(describedApp(), version)).catch((error: unknown) => {
      document = undefined; // tried again by the next request
      throw error;
    });
    c.header('Cache-Control', 'no-cache');
    return c.json(await document);
  });
  app.get('/', (c) => c.html(PAGE));
  app.get('/init.js', (c) => c.body(INIT, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }));
  const cache = new Map<string, Buffer>();
  app.get('/assets/:name', (c) => {
    const name = c.req.param('name');
    const type = ASSETS[name];
    if (type === undefined) return c.notFound();
    let body = cache.get(name);
    if (!body) cache.set(name, (body = readFileSync(path.join(SWAGGER_DIR, name))));
    return c.body(new Uint8Array(body), 200, { 'Content-Type': type, 'Cache-Control': 'public, max-age=86400' });
  });
  return app;
}
