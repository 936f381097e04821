// `npm test` on a machine that lacks a program some tests need: those files are named and left out,
// the rest run, and nothing is installed unless asked; under CI the same run fails instead.
// Caddy is the program taken away here (it is found on PATH); a pure unit file stands for the rest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/server.ts';

const CADDY_TEST = 'test/edge/caddy.test.ts';
const UNIT_TEST = 'test/server/http/range.test.ts';

function runTests(env: Record<string, string>, ...args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // An empty PATH: no caddy, and no apt-get either, so nothing can be installed by accident.
    const child = spawn(process.execPath, [path.join(ROOT, 'test/run.mjs'), ...args], {
      cwd: ROOT,
      env: { HOME: process.env.HOME ?? '/tmp', PATH: '', TEST_CONCURRENCY: '1', ...env },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

describe('test/run.mjs without every program', () => {
  test('runs what it can, names what it skipped and why, and installs nothing', async () => {
    const { status, output } = await runTests({}, 'edge/caddy.test', 'http/range.test');
    assert.equal(status, 0, output);
    assert.match(output, new RegExp(`${CADDY_TEST}: needs caddy`));
    assert.match(output, /caddy: Caddy.*\(Debian: caddy\)/);
    assert.match(output, /--install-deps/);
    assert.match(output, /ℹ pass [1-9]\d*\n/, `${UNIT_TEST} ran`);
    assert.match(output, /ℹ fail 0\n/);
    assert.doesNotMatch(output, /installing Debian packages/);
  });

  test('fails when every chosen file was skipped', async () => {
    const { status, output } = await runTests({}, 'edge/caddy.test');
    assert.equal(status, 1, output);
    assert.match(output, /every matching test file needs something this machine lacks/);
  });

  test('under CI, a program that cannot be installed fails the run before any test', async () => {
    const { status, output } = await runTests({ CI: 'true' }, 'edge/caddy.test', 'http/range.test');
    assert.equal(status, 1, output);
    assert.match(output, /installing Debian packages the tests use: caddy\n/);
    assert.match(output, /CI runs every test, but these are missing: caddy/);
    assert.doesNotMatch(output, /ℹ pass/);
  });
});
