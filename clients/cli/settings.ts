// Where the CLI's settings come from: flags first, then the environment. The only reader of
// process.env in the CLI (main.ts passes it in).
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
  return {
    url: (flags.url ?? env.STREAM_LINE_URL ?? DEFAULT_URL).replace(/\/+$/, ''),
    token: flags.token ?? (env.STREAM_LINE_TOKEN || undefined),
    serviceToken: flags['service-token'] ?? (env.STREAM_LINE_SERVICE_TOKEN || undefined),
    statePath: env.STREAM_LINE_STATE || `${configHome}/stream-line/uploads.json`,
  };
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
