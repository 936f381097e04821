// Where the CLI's settings come from: flags first, then the environment. The only reader of
// process.env in the CLI (main.ts passes it in).
import { isNoSuchRoute, StreamLineError } from '../sdk/node.ts';

export interface Settings {
  url: string;
  token: string | undefined;
  serviceToken: string | undefined;
  statePath: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export function resolveSettings(
  flags: { url?: string | undefined; token?: string | undefined; 'service-token'?: string | undefined },
  env: NodeJS.ProcessEnv,
  home: string,
): Settings {
  const configHome = env.XDG_CONFIG_HOME || `${home}/.config`;
  const url = (flags.url ?? env.STREAM_LINE_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!isHttpUrl(url)) {
    const from = flags.url !== undefined ? '--url' : 'STREAM_LINE_URL';
    throw new UsageError(`${from} must be an http:// or https:// address such as https://upload.example.com (got "${url}")`);
  }
  return {
    url,
    token: flags.token ?? (env.STREAM_LINE_TOKEN || undefined),
    serviceToken: flags['service-token'] ?? (env.STREAM_LINE_SERVICE_TOKEN || undefined),
    statePath: env.STREAM_LINE_STATE || `${configHome}/stream-line/uploads.json`,
  };
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol, hostname } = new URL(text);
    return (protocol === 'http:' || protocol === 'https:') && hostname !== '';
  } catch {
    return false;
  }
}

/**
 * A line naming the server, when a failure suggests its address is wrong: nothing answered there,
 * something other than Stream-Line answered, or Stream-Line has no such route (a wrong path in the
 * address). Null for any other failure.
 */
export function addressHint(error: unknown, url: string): string | null {
  if (!(error instanceof StreamLineError)) return null;
  const wrongPlace = error.code === 'network_error' || error.code === 'unexpected_response' || isNoSuchRoute(error);
  return wrongPlace ? `the server address is ${url} (from --url or STREAM_LINE_URL): is it right?` : null;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function requireToken(settings: Settings): string {
  if (settings.token) return settings.token;
  throw new UsageError('no user token: pass --token or set STREAM_LINE_TOKEN (a service mints one with `stream-line token <user>`)');
}

export function requireServiceToken(settings: Settings): string {
  if (settings.serviceToken) return settings.serviceToken;
  throw new UsageError('no service token: pass --service-token or set STREAM_LINE_SERVICE_TOKEN');
}
