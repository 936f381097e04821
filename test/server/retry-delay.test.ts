// The retry backoff of scans and webhook deliveries (server/retry-delay.ts): 1 s doubling up to the
// maximum, then between half and all of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retryDelayMs } from '../../server/retry-delay.ts';

test('retry delays double from 1 s up to the maximum, with jitter in the upper half', () => {
  const cases: [attempts: number, maxMs: number, random: number, expected: number][] = [
    [1, 300_000, 0, 500],
    [1, 300_000, 1, 1000],
    [2, 300_000, 1, 2000],
    [4, 300_000, 0.5, 6000],
    [9, 300_000, 1, 256_000],
    [10, 300_000, 1, 300_000],
    [10, 300_000, 0, 150_000],
    [5000, 300_000, 1, 300_000],
    [3, 1000, 0, 500],
  ];
  for (const [attempts, maxMs, random, expected] of cases) {
    assert.equal(retryDelayMs(attempts, maxMs, () => random), expected, `attempt ${attempts}, max ${maxMs}, random ${random}`);
  }
});
