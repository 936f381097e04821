// Every secret a request presents (service tokens, the metrics token, the edge secret) is checked
// here, in constant time. Hashing both sides first gives equal-length inputs to timingSafeEqual, so
// neither the content nor the length of a configured secret leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';

export type SecretCheck = (presented: string) => boolean;

/** Whether a presented value is one of `secrets`; an unset (undefined) secret matches nothing. */
export function createSecretCheck(secrets: ReadonlyArray<string | undefined>): SecretCheck {
  const digests = secrets.filter((secret) => secret !== undefined).map(sha256);
  return (presented) => {
    const candidate = sha256(presented);
    let ok = false;
    // Check every configured secret (no early exit) so the position of a match does not leak either.
    for (const digest of digests) ok = timingSafeEqual(candidate, digest) || ok;
    return ok;
  };
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
