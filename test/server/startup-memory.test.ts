// After start-up the server gives back the young generation that loading it grew
// (server/startup-memory.ts): V8 keeps those pages otherwise, alive or not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import { releaseStartupMemory } from '../../server/startup-memory.ts';

const youngGeneration = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

test('one call shrinks a young generation that loading grew, and resolves', async () => {
  // What loading modules does: many objects that survive a few collections.
  let kept: object[] = [];
  for (let round = 0; round < 40 && youngGeneration() < 8 * 1024 * 1024; round++) {
    for (let i = 0; i < 100_000; i++) kept.push({ i, round });
  }
  const grown = youngGeneration();
  kept = [];
  await releaseStartupMemory();
  assert.ok(youngGeneration() < grown, `young generation ${youngGeneration()} bytes after, ${grown} before`);
  await releaseStartupMemory(); // again: nothing left connected from the first call
});
