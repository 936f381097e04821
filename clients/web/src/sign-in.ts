// Who is using the page: a pasted token (kept in localStorage until "Sign out"), or, when the page
// is on the server's own origin, the server's session cookie. The API may live on another origin
// (`?server=https://…` or the Server field): the server's CORS_ORIGINS must then list this page.
import { createUserSession, type BrowserSource, type UserSession } from '../../sdk/index.ts';

const TOKEN_KEY = 'stream-line:token';
const SERVER_KEY = 'stream-line:server';

export interface SignedIn {
  server: string;
  session: UserSession<BrowserSource>;
  /** Undefined when signed in through the cookie. */
  token: string | undefined;
  /** The token's `sub`, for display; null with a cookie (it is not readable from script). */
  userId: string | null;
}

export function serverUrl(): string {
  const fromQuery = new URLSearchParams(location.search).get('server');
  return (fromQuery || localStorage.getItem(SERVER_KEY) || location.origin).replace(/\/+$/, '');
}

/** The session this browser already has, checked against the server; null if none works. */
export async function restore(server: string): Promise<SignedIn | null> {
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      return await signIn(server, token);
    } catch {
      localStorage.removeItem(TOKEN_KEY);
    }
  }
  const cookie = createUserSession({ baseUrl: server, credentials: 'include' });
  try {
    await cookie.usage();
    return { server, session: cookie, token: undefined, userId: null };
  } catch {
    return null;
  }
}

/** Checks the token with the server (throws its error in words upstream), then keeps it. */
export async function signIn(server: string, token: string): Promise<SignedIn> {
  const session = createUserSession({ baseUrl: server, token });
  await session.usage();
  localStorage.setItem(TOKEN_KEY, token);
  if (server !== location.origin) localStorage.setItem(SERVER_KEY, server);
  else localStorage.removeItem(SERVER_KEY);
  return { server, session, token, userId: subjectOf(token) };
}

export function signOut(): void {
  localStorage.removeItem(TOKEN_KEY);
}

function subjectOf(token: string): string | null {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}
