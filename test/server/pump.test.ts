// The pump (server/pump.ts) that drives the scan worker and the webhook dispatcher: one pass at a
// time, wake-ups during a pass coalesce into one more, stop waits for the pass in flight, and a
// pass that throws is reported without stopping the pump. Each case is a script of steps against
// passes that the test itself lets finish, so nothing depends on timing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPump, type Pump } from '../../server/pump.ts';
import { until } from '../helpers/until.ts';

/** A pump whose passes wait until the test ends them, one at a time, in order. */
function harness() {
  const passes: Array<{ end: () => void; fail: (error: Error) => void }> = [];
  const errors: string[] = [];
  let started = 0;
  const pump = createPump(
    () =>
      new Promise<void>((resolve, reject) => {
        started++;
        passes.push({ end: resolve, fail: reject });
      }),
    (error) => errors.push((error as Error).message),
  );
  return {
    pump,
    errors,
    get started() {
      return started;
    },
    /** Ends the oldest pass still running, and lets the pump react. */
    async finish(outcome: 'ok' | 'throw' = 'ok') {
      const pass = passes.shift();
      assert.ok(pass, 'a pass is running');
      if (outcome === 'ok') pass.end();
      else pass.fail(new Error(`pass ${started - passes.length} failed`));
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
    get running() {
      return passes.length;
    },
  };
}

type Expected = { started: number; running: number; errors?: number };
type Step = ['start' | 'wake' | 'stop' | 'stop-resolves-after-finish'] | ['finish', 'ok' | 'throw'] | ['expect', Expected];

const cases: Array<{ name: string; steps: Step[] }> = [
  {
    name: 'a new pump is stopped: a wake-up runs nothing until start',
    steps: [['wake'], ['expect', { started: 0, running: 0 }], ['start'], ['expect', { started: 1, running: 1 }]],
  },
  {
    name: 'a wake-up while idle runs one pass',
    steps: [
      ['start'], ['finish', 'ok'], ['expect', { started: 1, running: 0 }],
      ['wake'], ['expect', { started: 2, running: 1 }], ['finish', 'ok'], ['expect', { started: 2, running: 0 }],
    ],
  },
  {
    name: 'wake-ups during a pass coalesce into exactly one more pass, never two at once',
    steps: [
      ['start'], ['wake'], ['wake'], ['wake'], ['expect', { started: 1, running: 1 }],
      ['finish', 'ok'], ['expect', { started: 2, running: 1 }],
      ['finish', 'ok'], ['expect', { started: 2, running: 0 }],
    ],
  },
  {
    name: 'a wake-up during the extra pass asks for one more after it',
    steps: [
      ['start'], ['wake'], ['finish', 'ok'], ['wake'], ['expect', { started: 2, running: 1 }],
      ['finish', 'ok'], ['expect', { started: 3, running: 1 }], ['finish', 'ok'], ['expect', { started: 3, running: 0 }],
    ],
  },
  {
    name: 'stop waits for the pass in flight, and no pass starts after it, even one asked for before',
    steps: [
      ['start'], ['wake'], ['stop-resolves-after-finish'], ['expect', { started: 1, running: 0 }],
      ['wake'], ['expect', { started: 1, running: 0 }],
    ],
  },
  {
    name: 'stop while idle resolves at once; start runs again',
    steps: [['start'], ['finish', 'ok'], ['stop'], ['wake'], ['expect', { started: 1, running: 0 }], ['start'], ['expect', { started: 2, running: 1 }]],
  },
  {
    name: 'a pass that throws is reported and the pump keeps working',
    steps: [
      ['start'], ['finish', 'throw'], ['expect', { started: 1, running: 0, errors: 1 }],
      ['wake'], ['expect', { started: 2, running: 1, errors: 1 }], ['finish', 'ok'], ['expect', { started: 2, running: 0, errors: 1 }],
    ],
  },
  {
    name: 'a wake-up during a pass that throws still gets its pass',
    steps: [['start'], ['wake'], ['finish', 'throw'], ['expect', { started: 2, running: 1, errors: 1 }], ['finish', 'ok'], ['expect', { started: 2, running: 0, errors: 1 }]],
  },
];

describe('pump', () => {
  for (const { name, steps } of cases) {
    test(name, async () => {
      const h = harness();
      for (const [i, step] of steps.entries()) {
        const at = `step ${i} (${JSON.stringify(step)})`;
        if (step[0] === 'start') h.pump.start();
        else if (step[0] === 'wake') h.pump.wake();
        else if (step[0] === 'stop') await h.pump.stop();
        else if (step[0] === 'finish') await h.finish(step[1]);
        else if (step[0] === 'stop-resolves-after-finish') {
          let stopped = false;
          const stopping = h.pump.stop().then(() => (stopped = true));
          await new Promise<void>((resolve) => setImmediate(resolve));
          assert.equal(stopped, false, `${at}: stop resolved while a pass was running`);
          await h.finish('ok');
          await stopping;
        } else {
          const want = step[1] as Expected;
          assert.equal(h.started, want.started, `${at}: passes started`);
          assert.equal(h.running, want.running, `${at}: passes running`);
          assert.equal(h.errors.length, want.errors ?? 0, `${at}: errors reported`);
        }
      }
    });
  }

  test('a wake-up set for later runs a pass; setting it again replaces it; a pass starting clears it', async () => {
    const h = harness();
    const pump: Pump = h.pump;
    pump.start();
    await h.finish('ok');
    pump.wakeIn(60_000);
    pump.wakeIn(0); // replaces the long one
    await until('the pass woken in 0 ms', () => h.started === 2);
    await h.finish('ok');
    pump.wakeIn(0);
    pump.wake(); // runs now: the pending timer is cleared
    assert.equal(h.started, 3);
    await h.finish('ok');
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(h.started, 3, 'the cleared timer ran no pass');
  });

  test('stop clears a wake-up set for later', async () => {
    const h = harness();
    h.pump.start();
    await h.finish('ok');
    h.pump.wakeIn(0);
    await h.pump.stop();
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    assert.equal(h.started, 1);
  });
});
