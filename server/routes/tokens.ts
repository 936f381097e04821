// User tokens minted by the server for services (POST /v1/files/generate-token, docs/api.md), and the
// public half of the signing key at /.well-known/jwks.json so other services can verify them.
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { validated, wholeNumber } from '../api-docs/validate.ts';
import type { JWK } from 'jose';
import { actingUser, requireService, type AuthEnv } from '../auth/caller.ts';
import { publicJwk, type SignUserToken } from '../auth/jwt.ts';
import { commonProblems, jsonResponse, problemResponse } from './files.ts';

const DEFAULT_HOURS = 24;
const MAX_HOURS = 24 * 30;

export function tokenRoutes(sign: SignUserToken): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.post(
    '/files/generate-token',
    describeRoute({
      tags: ['tokens'],
      summary: 'Mint a user JWT (service token only)',
      security: [{ service: [] }],
      responses: {
        200: jsonResponse('the token', z.object({ token: z.string(), expires_at: z.string().meta({ format: 'date-time' }), user_id: z.string() })),
        400: problemResponse('bad parameter'),
        403: problemResponse('not the service token'),
        ...commonProblems,
      },
    }),
    validated('query', z.object({
      user_id: z.string().optional().meta({ description: 'the user the token is for (required)' }),
      expires_hours: wholeNumber('expires_hours', 1, MAX_HOURS).optional().meta({ description: `token lifetime in hours (default ${DEFAULT_HOURS})` }),
    })),
    async (c) => {
      requireService(c);
      const query = c.req.valid('query');
      const userId = actingUser(c.get('caller'), query.user_id);
      const { token, expiresAt } = await sign(userId, (query.expires_hours ?? DEFAULT_HOURS) * 3600);
      return c.json({ token, expires_at: expiresAt.toISOString(), user_id: userId });
    },
  );
  return app;
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
