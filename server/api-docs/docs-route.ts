// GET /docs: the API described by the routes themselves (hono-openapi walks the app and reads each
// route's describeRoute/validator), shown with Swagger UI served from node_modules — no CDN, so
// the page works offline and under a strict network policy.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import { generateSpecs } from 'hono-openapi';

const require = createRequire(import.meta.url);
const SWAGGER_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
};
/** Routes that are not part of the files API: tus has its own protocol; the rest are not JSON APIs. */
const NOT_DOCUMENTED = [/^\/v1\/uploads/, /^\/docs/, /^\/metrics/, /^\/\.well-known/];

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
    document ??= generateSpecs(describedApp(), {
      documentation: {
        info: {
          title: 'Stream-Line Upload files API',
          version,
          description: 'Files, signed links, batch ZIPs, tokens and health. Uploads themselves speak tus 1.0.0 at /v1/uploads (https://tus.io/protocols/resumable-upload). Errors are RFC 9457 problem+json with a stable `code`.',
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            service: { type: 'apiKey', in: 'header', name: 'X-Service-Token' },
          },
        },
        security: [{ bearer: [] }, { service: [] }],
      },
      exclude: NOT_DOCUMENTED,
      excludeMethods: ['OPTIONS'],
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
