// User tokens minted by the server for services (SPEC: POST /v1/files/generate-token), and the
// public half of the signing key at /.well-known/jwks.json so other services can verify them.
import { Hono } from 'hono';
import type { JWK } from 'jose';
import { actingUser, requireService, type AuthEnv } from '../auth/caller.ts';
import { publicJwk, type SignUserToken } from '../auth/jwt.ts';
import { AppError } from '../errors.ts';

const DEFAULT_HOURS = 24;
const MAX_HOURS = 24 * 30;

export function tokenRoutes(sign: SignUserToken): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.post('/files/generate-token', async (c) => {
    requireService(c);
    const userId = actingUser(c.get('caller'), c.req.query('user_id'));
    const raw = c.req.query('expires_hours');
    let hours = DEFAULT_HOURS;
    if (raw !== undefined) {
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_HOURS) {
        throw new AppError('invalid_parameter', `expires_hours must be a whole number from 1 to ${MAX_HOURS}`);
      }
      hours = Number(raw);
    }
    const { token, expiresAt } = await sign(userId, hours * 3600);
    return c.json({ token, expires_at: expiresAt.toISOString(), user_id: userId });
  });
  return app;
}

export function jwksRoute(ownKey: JWK): Hono {
  const app = new Hono();
  const body = { keys: [publicJwk(ownKey)] };
  app.get('/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(body);
  });
  return app;
}
