// The OpenAPI document of the whole HTTP API: what hono-openapi reads from the routes' own
// describeRoute/validator, plus the tus endpoint and /metrics described by hand (tus-paths.ts).
// Routes whose handlers load on first use are read as their handlers (routes/lazy-routes.ts).
import type { Hono } from 'hono';
import { generateSpecs } from 'hono-openapi';
import { describedRoutes } from '../routes/lazy-routes.ts';
import { METRICS_PATH, METRICS_SECURITY_SCHEME, TUS_PATHS } from './tus-paths.ts';

/**
 * Routes whose description is not read from the route: tus and /metrics are described by hand
 * (one handler serves every tus method); /docs and the JWKS are not APIs to call.
 */
const NOT_GENERATED = [/^\/v1\/uploads/, /^\/docs/, /^\/metrics/, /^\/\.well-known/];

export async function openApiDocument(app: Hono<any, any, any>, version: string): Promise<Record<string, unknown>> {
  // hono-openapi reads nothing of the app but its routes.
  const described = { routes: await describedRoutes(app) } as unknown as Hono;
  const generated = (await generateSpecs(described, {
    documentation: {
      info: {
        title: 'Stream-Line Upload API',
        version,
        description:
          'Resumable uploads over tus 1.0.0 at /v1/uploads (https://tus.io/protocols/resumable-upload), then files, signed links, batch ZIPs, tokens, health and metrics. ' +
          'Errors are RFC 9457 application/problem+json with a stable `code`; each error response lists the codes it may carry.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          service: { type: 'apiKey', in: 'header', name: 'X-Service-Token' },
        },
      },
      security: [{ bearer: [] }, { service: [] }],
    },
    exclude: NOT_GENERATED,
    excludeMethods: ['OPTIONS'],
  })) as unknown as { paths?: Record<string, unknown>; components?: { securitySchemes?: Record<string, unknown> } };
  return {
    ...generated,
    paths: { ...TUS_PATHS, ...generated.paths, ...METRICS_PATH },
    components: {
      ...generated.components,
      securitySchemes: { ...generated.components?.securitySchemes, metrics: METRICS_SECURITY_SCHEME },
    },
  };
}
