// A service's client from a service token: acts for any user (docs/api.md "Authentication": X-Service-Token
// with `user_id`), and mints user tokens and sessions.
import { errorFromResponse, StreamLineError } from './errors.ts';
import { createHttp, keyPath, type HttpOptions } from './http.ts';
import type { FileList, FileRecord, Health, Jwks, ListOptions, Usage, UserToken } from './types.ts';
import type { UserSession, UserSessionOptions } from './user-session.ts';

export interface ServiceClientOptions extends HttpOptions {
  serviceToken: string;
}

export interface ServiceClient<S> {
  readonly baseUrl: string;
  listUserFiles(userId: string, options?: ListOptions): Promise<FileList>;
  getFileMetadata(key: string): Promise<FileRecord>;
  deleteFile(key: string): Promise<void>;
  userUsage(userId: string): Promise<Usage>;
  /** A user JWT signed by the server, valid `expiresHours` (1–720, default 24). */
  generateUserToken(userId: string, expiresHours?: number): Promise<UserToken>;
  /** Mints a token and returns that user's session. */
  createUserSession(userId: string, expiresHours?: number): Promise<UserSession<S>>;
  /** The health report; a failing check is reported in it (status 'fail'), not thrown. */
  healthCheck(): Promise<Health>;
  /** The public keys that verify the server's user tokens. */
  getJwks(): Promise<Jwks>;
}

export function serviceClientWith<S>(userSession: (options: UserSessionOptions) => UserSession<S>): (options: ServiceClientOptions) => ServiceClient<S> {
  return (options) => {
    const http = createHttp(options, { 'X-Service-Token': options.serviceToken });
    const generateUserToken = (userId: string, expiresHours?: number) =>
      http.json<UserToken>('POST', '/v1/files/generate-token', { query: { user_id: userId, expires_hours: expiresHours } });
    return {
      baseUrl: http.baseUrl,
      listUserFiles: (userId, list = {}) => http.json('GET', '/v1/files/all', { query: { ...list, user_id: userId } }),
      getFileMetadata: (key) => http.json('GET', `/v1/files/metadata/${keyPath(key)}`),
      deleteFile: async (key) => {
        await http.json('DELETE', `/v1/files/${keyPath(key)}`);
      },
      userUsage: (userId) => http.json('GET', '/v1/usage', { query: { user_id: userId } }),
      generateUserToken,
      async createUserSession(userId, expiresHours) {
        const { token } = await generateUserToken(userId, expiresHours);
        const { serviceToken: _unused, ...rest } = options;
        return userSession({ ...rest, token });
      },
      async healthCheck() {
        // 503 carries the same report with the failing check marked: that is an answer, not an error.
        let res: Response;
        try {
          res = await http.fetch(`${http.baseUrl}/healthz`);
        } catch (error) {
          throw new StreamLineError('network_error', 0, (error as Error).message, { cause: error });
        }
        const text = await res.text();
        const isJson = res.headers.get('content-type')?.startsWith('application/json');
        if ((res.ok || res.status === 503) && isJson) return JSON.parse(text) as Health;
        throw errorFromResponse(res.status, res.headers.get('content-type'), text);
      },
      getJwks: () => http.json('GET', '/.well-known/jwks.json'),
    };
  };
}
