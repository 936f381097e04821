// POST /v1/files/generate-token's handler (docs/api.md): a user token minted for a service. Loaded on
// the route's first request (tokens.ts).
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { commonProblems, jsonResponse, problemResponse } from '../http/api-responses.ts';
import { validated, wholeNumber } from '../http/validate.ts';
import { actingUser, requireService, type AuthEnv } from '../auth/caller.ts';
import type { SignUserToken } from '../auth/jwt.ts';
import { TOKEN_ROUTES } from './api-route-paths.ts';

const DEFAULT_HOURS = 24;
const MAX_HOURS = 24 * 30;

export function tokenHandlers(sign: SignUserToken): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.on(
    TOKEN_ROUTES.generate.method,
    TOKEN_ROUTES.generate.path,
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
