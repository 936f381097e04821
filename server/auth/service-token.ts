// Service tokens: compared in constant time. Hashing both sides first gives equal-length inputs to
// timingSafeEqual, so neither the content nor the length of a configured token leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';

export type ServiceTokenCheck = (presented: string) => boolean;

export function createServiceTokenCheck(tokens: string[]): ServiceTokenCheck {
  const digests = tokens.map(sha256);
  return (presented) => {
    const candidate = sha256(presented);
    let ok = false;
    // Check every configured token (no early exit) so the position of a match does not leak either.
    for (const digest of digests) ok = timingSafeEqual(candidate, digest) || ok;
    return ok;
  };
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
