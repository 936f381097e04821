// A PostgreSQL database that cannot be reached (stopped, restarting, failing over, out of connections) is a
// failure of the machine, not of the request: it is answered 503 `unavailable` with Retry-After,
// which tus clients and the original client retry, instead of 500 `internal`. The request changed
// nothing it could not take back: a statement that never reached the database did nothing, and a
// transaction cut before its COMMIT was answered is rolled back by PostgreSQL.
import { AppError } from './errors.ts';

/** Socket errors of a connection that could not be made or was lost. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/**
 * SQLSTATEs of a server going away or refusing connections: class 08 (connection exception),
 * 57P01–57P03 (shut down by an administrator, after a crash, or still starting), 53300 (too many
 * connections).
 */
const SERVER_GONE = /^(08...|57P0[123]|53300)$/;
/** What node-postgres itself says when a connection ends under it or cannot be had in time. */
const CLIENT_GONE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/** `error` as a 503 when it says the database cannot be reached; otherwise `error` itself. */
function unreachableAsUnavailable(error: unknown): unknown {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const gone = (typeof code === 'string' && (SOCKET_CODES.has(code) || SERVER_GONE.test(code)))
    || (typeof message === 'string' && CLIENT_GONE.test(message));
  if (!gone) return error;
  const unavailable = new AppError('unavailable', 'the database cannot be reached; retry shortly');
  unavailable.cause = error;
  return unavailable;
}

/** Rethrows what `run` throws, a lost database as 503 (unreachableAsUnavailable). */
export async function reachingDatabase<T>(run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (error) {
    throw unreachableAsUnavailable(error);
  }
}
