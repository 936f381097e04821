// Background work that failed (a scan without a verdict, a webhook delivery without a 2xx) waits
// before its next attempt: 1 s doubling up to a maximum the operator sets (SCAN_RETRY_MAX_SECONDS,
// WEBHOOK_RETRY_MAX_SECONDS), then between half and all of it, so that work failing together
// (clamd or a receiver coming back) does not come back all at once.
const FIRST_DELAY_MS = 1000;

/** Wait before retry number `attempts` (1, 2, …), at most `maxMs`. */
export function retryDelayMs(attempts: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, FIRST_DELAY_MS * 2 ** Math.min(attempts - 1, 40));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
