// The writes in flight per upload (server/storage/writes-in-flight.ts): whoever resumes after a
// tracked write, its caller or a waiter in idle(), finds the write no longer in flight, whether it
// stored its bytes or failed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WritesInFlight } from '../../../server/storage/writes-in-flight.ts';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

for (const outcome of ['stored', 'failed'] as const) {
  test(`a write that ${outcome}: busy while it runs, gone for its caller and for idle() waiters`, async () => {
    const writes = new WritesInFlight();
    const work = deferred<number>();
    const tracked = writes.track('u1', work.promise);
    assert.equal(writes.busy('u1'), true);
    assert.equal(writes.busy('u2'), false);
    const waited = writes.idle('u1').then(() => writes.busy('u1'));
    const seenByCaller = tracked.then(
      (offset) => ({ offset, busy: writes.busy('u1') }),
      (error: Error) => ({ offset: error.message, busy: writes.busy('u1') }),
    );
    if (outcome === 'stored') work.resolve(42);
    else work.reject(new Error('cut'));
    assert.deepEqual(await seenByCaller, { offset: outcome === 'stored' ? 42 : 'cut', busy: false });
    assert.equal(await waited, false);
    await writes.settled();
  });
}

test('a newer write of the same upload stays in flight when an older one ends', async () => {
  const writes = new WritesInFlight();
  const older = deferred<number>();
  const newer = deferred<number>();
  const first = writes.track('u1', older.promise);
  writes.track('u1', newer.promise).catch(() => {});
  older.resolve(1);
  await first;
  assert.equal(writes.busy('u1'), true);
  newer.resolve(2);
  await writes.idle('u1');
  assert.equal(writes.busy('u1'), false);
});
