// Who is using the page, and which server it talks to. The API may live on another origin
// (`?server=https://…` or the Server field; that server's CORS_ORIGINS must list this page).
//
// A token is only ever sent to the server it was entered for: tokens are kept per server origin,
// and a page opened for a server this browser holds no token for asks to sign in to it. A link
// can name any server, so a server taken from the link becomes the page's default only once the
// user has signed in to it. The session cookie is used only when the API is the page's own origin:
// cookies belong to a host, not a port, so one sent "with credentials" elsewhere could reach
// another program on the same host.
import { createUserSession, type BrowserSource, type UserSession } from '../../sdk/index.ts';

const TOKENS_KEY = 'stream-line:tokens';
const DEFAULT_SERVER_KEY = 'stream-line:default-server';
/** A token or server stored without saying which server the token is for: removed, never guessed at. */
const UNKEYED = ['stream-line:token', 'stream-line:server'];

export interface SignedIn {
  server: string;
  session: UserSession<BrowserSource>;
  /** Undefined when signed in through the cookie. */
  token: string | undefined;
  /** The token's `sub`, for display; null with a cookie (it is not readable from script). */
  userId: string | null;
}

export interface ServerChoice {
  server: string;
  /** Why the link's `server` was not used, when it was not a server address. */
  problem: string | null;
}

/**
 * A server address: http(s), no credentials, query or fragment; returned without a trailing slash.
 * Null when it is none of that.
 */
export function parseServer(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) return null;
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export function chooseServer(): ServerChoice {
  for (const key of UNKEYED) localStorage.removeItem(key);
  const own = location.origin;
  const remembered = parseServer(localStorage.getItem(DEFAULT_SERVER_KEY) ?? '') ?? own;
  const fromLink = new URLSearchParams(location.search).get('server');
  if (fromLink === null || fromLink === '') return { server: remembered, problem: null };
  const server = parseServer(fromLink);
  if (server) return { server, problem: null };
  return { server: remembered, problem: `The link names a server address that is not valid (${fromLink}); showing ${remembered} instead.` };
}

/** The session this browser already has for this server, checked against it; null if none works. */
export async function restore(server: string): Promise<SignedIn | null> {
  const token = storedTokens()[originOf(server)];
  if (token) return signIn(server, token, { remember: false });
  if (!isOwnOrigin(server) || !document.body.hasAttribute('data-has-cookie')) return null;
  // On the server's own page a session cookie (set by a single sign-on in front of it) may sign in.
  const cookie = createUserSession({ baseUrl: server });
  try {
    await cookie.usage();
    return { server, session: cookie, token: undefined, userId: null };
  } catch {
    return null;
  }
}

/**
 * Checks the token with the server (throws its error in words upstream), then keeps it for that
 * server's origin alone. `remember`: the user signed in here, so this server becomes the default.
 */
export async function signIn(server: string, token: string, { remember }: { remember: boolean }): Promise<SignedIn> {
  const session = createUserSession({ baseUrl: server, token });
  await session.usage();
  storeTokens({ ...storedTokens(), [originOf(server)]: token });
  if (remember && isOwnOrigin(server)) localStorage.removeItem(DEFAULT_SERVER_KEY);
  else if (remember) localStorage.setItem(DEFAULT_SERVER_KEY, server);
  return { server, session, token, userId: subjectOf(token) };
}

/** Forgets the token for this server only. */
export function signOut(server: string): void {
  const tokens = storedTokens();
  delete tokens[originOf(server)];
  storeTokens(tokens);
}

function originOf(server: string): string {
  return new URL(server).origin;
}

function isOwnOrigin(server: string): boolean {
  return originOf(server) === location.origin;
}

function storedTokens(): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(TOKENS_KEY) ?? '{}');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  } catch {
    return {};
  }
}

function storeTokens(tokens: Record<string, string>): void {
  if (Object.keys(tokens).length === 0) localStorage.removeItem(TOKENS_KEY);
  else localStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
}

function subjectOf(token: string): string | null {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}
