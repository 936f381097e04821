// The one place requests are made: base URL, credentials, JSON in and out, problem+json → error.
import { errorFromResponse, StreamLineError } from './errors.ts';

export interface HttpOptions {
  /** The server's origin, e.g. `https://upload.example.com` (a trailing slash is ignored). */
  baseUrl: string;
  /** A fetch to use instead of the global one (tests, proxies, custom agents). */
  fetch?: typeof fetch;
  /** Browsers: 'include' sends the session cookie to another origin too. */
  credentials?: RequestCredentials;
}

export interface Http {
  readonly baseUrl: string;
  readonly headers: Record<string, string>;
  readonly fetch: typeof fetch;
  /** A JSON answer, or null for 204. */
  json<T>(method: string, path: string, init?: { query?: Query; body?: unknown; signal?: AbortSignal }): Promise<T>;
}

export type Query = Record<string, string | number | undefined>;

export function createHttp(options: HttpOptions, headers: Record<string, string>): Http {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const given = options.fetch ?? ((input, init) => fetch(input, init));
  const doFetch: typeof fetch = options.credentials ? (input, init) => given(input, { credentials: options.credentials, ...init }) : given;
  return {
    baseUrl,
    headers,
    fetch: doFetch,
    async json<T>(method: string, path: string, init: { query?: Query; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
      const url = new URL(baseUrl + path);
      for (const [name, value] of Object.entries(init.query ?? {})) {
        if (value !== undefined) url.searchParams.set(name, String(value));
      }
      const requestHeaders: Record<string, string> = { Accept: 'application/json', ...headers };
      if (init.body !== undefined) requestHeaders['Content-Type'] = 'application/json';
      let res: Response;
      try {
        res = await doFetch(url, {
          method,
          headers: requestHeaders,
          ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
          ...(init.signal ? { signal: init.signal } : {}),
        });
      } catch (error) {
        if ((error as Error | null)?.name === 'AbortError') throw error;
        throw new StreamLineError('network_error', 0, `${method} ${url.origin}${url.pathname}: ${(error as Error).message}`, { cause: error });
      }
      const text = await res.text();
      if (!res.ok) throw errorFromResponse(res.status, res.headers.get('content-type'), text);
      if (res.status === 204 || text === '') return null as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new StreamLineError('unexpected_response', res.status, `expected JSON from ${method} ${url.pathname}`);
      }
    },
  };
}

/** A file key in a path: slashes stay, everything else is percent-encoded (keys contain slashes, which the server reads raw). */
export function keyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
