// User tokens minted by the server for services (POST /v1/files/generate-token, docs/api.md), and the
// public half of the signing key at /.well-known/jwks.json so other services can verify them.
// generate-token is registered at start by method and path; its handler (tokens-handlers.ts) is
// imported on its first request (lazy-routes.ts says why).
import { Hono } from 'hono';
import type { JWK } from 'jose';
import type { AuthEnv } from '../auth/caller.ts';
import { publicJwk, type SignUserToken } from '../auth/jwt.ts';
import { TOKEN_ROUTES } from './api-route-paths.ts';
import { lazyRoutes } from './lazy-routes.ts';

export function tokenRoutes(sign: SignUserToken): Hono<AuthEnv> {
  return lazyRoutes(Object.values(TOKEN_ROUTES), async () => (await import('./tokens-handlers.ts')).tokenHandlers(sign));
}

/** The public halves of the server's own keys: the signing key first, then retired ones still verifying. */
export function jwksRoute(ownKeys: JWK[]): Hono {
  const app = new Hono();
  const body = { keys: ownKeys.map(publicJwk) };
  app.get('/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(body);
  });
  return app;
}
