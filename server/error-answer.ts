// The answer to an error nothing else answered: the app's error handler (server/app.ts) and the
// upload fast path (server/upload-fast-path.ts) both give it.
import type { Logger } from 'pino';
import { AppError, problemResponse, toAppError } from './errors.ts';
import { loggablePath } from './logging.ts';
import { TUS_PATH } from './tus.ts';

/** `base`: headers already set on the response being replaced (by middleware such as CORS). */
export function errorAnswer(log: Logger, error: unknown, method: string, path: string, requestId: string | undefined, base?: Headers): Response {
  const known = toAppError(error);
  if (!known || known.status >= 500) log.error({ err: error, request_id: requestId, method, path: loggablePath(path) }, 'request failed');
  const headers = new Headers(base);
  // tus 1.0 §3.2: every answer on the upload endpoint carries Tus-Resumable, refusals of the
  // middleware above (rate limit, origin, …) included.
  if (path === TUS_PATH || path.startsWith(`${TUS_PATH}/`)) headers.set('Tus-Resumable', '1.0.0');
  return problemResponse(known ?? new AppError('internal'), headers);
}
