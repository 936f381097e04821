// Problem codes in words, for people: the CLI prints these and the web page shows them.
import { StreamLineError, type StreamLineErrorCode } from './errors.ts';

const MESSAGES: Partial<Record<StreamLineErrorCode, string>> = {
  quota_exceeded: 'Not enough storage left in your quota for this file. Delete some files and try again.',
  upload_too_large: 'This file is larger than the server accepts for a single upload.',
  checksum_mismatch: 'The file arrived damaged (its SHA-256 did not match) and was discarded. Upload it again.',
  token_expired: 'Your session token has expired. Sign in again with a new token.',
  invalid_token: 'The token was not accepted. Check that it was copied whole, or ask for a new one.',
  unauthenticated: 'You are not signed in.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'Not found: it may have been deleted, or it belongs to someone else.',
  link_expired: 'This link has expired. Make a new one.',
  invalid_signature: 'This link is not valid: it was altered or made with another key.',
  upload_locked: 'The upload is busy in another request. Try again in a moment.',
  insufficient_storage: 'The server is out of disk space. Try again later; the upload will resume.',
  unavailable: 'The server is temporarily unavailable. Try again shortly.',
  network_error: 'The server could not be reached. Check the address and your connection.',
  internal: 'The server failed unexpectedly. Try again; if it keeps failing, tell the administrator.',
};

const NO_SUCH_ROUTE_WORDS = 'The server has no such route: check its address (and the path after the host name, if any).';

/** The server's 404 for the route itself, not for a file: the address, or the path in it, is wrong. */
export function isNoSuchRoute(error: StreamLineError): boolean {
  return error.code === 'not_found' && error.detail === 'no such route';
}

/**
 * One sentence for a person. Codes with words of their own get those; the rest (bad parameters,
 * bad metadata) are best explained by the server's detail, which names the field.
 */
export function errorMessage(error: unknown): string {
  if (!(error instanceof StreamLineError)) return error instanceof Error ? error.message : String(error);
  if (isNoSuchRoute(error)) return NO_SUCH_ROUTE_WORDS;
  const words = MESSAGES[error.code];
  if (words) return words;
  return error.detail ? `${capitalize(error.detail)} (${error.code}).` : `Request refused (${error.code}, HTTP ${error.status}).`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
