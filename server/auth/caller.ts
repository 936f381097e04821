// Who is calling: a token becomes a typed Caller before any route acts on it.
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import { isValidUserId } from '../user-id.ts';
import type { VerifyUserToken } from './jwt.ts';
import type { SecretCheck } from './secret-check.ts';

/**
 * A service that names a user in the `user_id` query parameter acts as that user (`actingFor`): it
 * sees and touches that user's files and uploads only. Without it, it reaches any by key.
 */
export type Caller = { kind: 'user'; userId: string } | { kind: 'service'; actingFor?: string };

export interface AuthDeps {
  verifyUserToken: VerifyUserToken;
  checkServiceToken: SecretCheck;
  cookieName: string;
}

/** `requestId` is set before any route by the request context (server/http/request-context.ts). */
export type AuthEnv = { Variables: { caller: Caller; requestId: string } };

/**
 * The credential a request presents, in the order identify() honours them: the service token,
 * then an Authorization header, then the cookie. Cookie-authenticated state changes are also held
 * to their origin (server/http/cross-origin.ts), since a browser adds the cookie by itself.
 */
export type PresentedCredential =
  | { kind: 'service'; token: string }
  | { kind: 'authorization'; header: string }
  | { kind: 'cookie'; token: string }
  | { kind: 'none' };

export function presentedCredential(request: Request, cookieName: string): PresentedCredential {
  const service = request.headers.get('x-service-token');
  if (service !== null) return { kind: 'service', token: service };
  const authorization = request.headers.get('authorization');
  if (authorization !== null) return { kind: 'authorization', header: authorization };
  // getCookie reads only the raw request's Cookie header.
  const cookie = getCookie({ req: { raw: request } } as Context, cookieName);
  return cookie ? { kind: 'cookie', token: cookie } : { kind: 'none' };
}

/** The caller a request's credential names; throws 401 for a missing or invalid one. */
export async function identifyRequest(request: Request, deps: AuthDeps): Promise<Caller> {
  const credential = presentedCredential(request, deps.cookieName);
  if (credential.kind === 'service') {
    if (!deps.checkServiceToken(credential.token)) throw new AppError('invalid_token', 'the service token is not valid');
    const actingFor = queriedUserId(request.url);
    return actingFor === undefined ? { kind: 'service' } : { kind: 'service', actingFor };
  }
  let token: string | undefined;
  if (credential.kind === 'authorization') {
    token = bearerToken(credential.header);
    if (token === undefined) throw new AppError('invalid_token', 'the Authorization header must be "Bearer <token>"');
  } else if (credential.kind === 'cookie') {
    token = credential.token;
  }
  if (!token) throw new AppError('unauthenticated', 'send a Bearer token, the session cookie or X-Service-Token');
  return { kind: 'user', userId: await deps.verifyUserToken(token) };
}

/** The `user_id` query parameter of `url`, checked; undefined when there is none. */
function queriedUserId(url: string): string | undefined {
  if (!url.includes('user_id=')) return undefined;
  const userId = new URL(url).searchParams.get('user_id');
  return userId === null ? undefined : checkedUserId(userId);
}

function checkedUserId(userId: string): string {
  if (!isValidUserId(userId)) throw new AppError('invalid_user_id', 'user_id must match [A-Za-z0-9._-]{1,128}');
  return userId;
}

export async function identify(c: Context, deps: AuthDeps): Promise<Caller> {
  return remember(c, await identifyRequest(c.req.raw, deps));
}

/** Kept on the context for every route alike (the request log names the user). */
function remember(c: Context, caller: Caller): Caller {
  c.set('caller', caller);
  return caller;
}

export function requireCaller(deps: AuthDeps): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    c.set('caller', await identify(c, deps));
    await next();
  };
}

export function requireService(c: Context<AuthEnv>): void {
  if (c.get('caller').kind !== 'service') throw new AppError('forbidden', 'this route needs the service token');
}

/**
 * The user a request acts for: a user acts for themselves; the service token names the user in
 * `user_id` (the query's, or `requested`: the route's own, such as tus's upload metadata). A user
 * naming someone else is refused rather than silently ignored, and so are two different names.
 */
export function actingUser(caller: Caller, requested: string | undefined): string {
  if (caller.kind === 'user') {
    if (requested !== undefined && requested !== caller.userId) {
      throw new AppError('forbidden', 'user_id may only be set with the service token');
    }
    return caller.userId;
  }
  if (requested !== undefined && caller.actingFor !== undefined && requested !== caller.actingFor) {
    throw new AppError('invalid_user_id', `user_id names two users: ${caller.actingFor} in the query, ${requested} in the request`);
  }
  const named = requested ?? caller.actingFor;
  if (named === undefined) throw new AppError('invalid_user_id', 'user_id is required with the service token');
  return checkedUserId(named);
}

/** Whether the caller may see a record owned by `ownerId` (otherwise it answers 404, never 403). */
export function mayAccess(caller: Caller, ownerId: string): boolean {
  if (caller.kind === 'user') return caller.userId === ownerId;
  return caller.actingFor === undefined || caller.actingFor === ownerId;
}
