// `npm test` on a machine that lacks a program some tests need: those files are named and left out,
// the rest run, and nothing is installed unless asked; under CI the same run fails instead.
// Caddy is the program taken away here (it is found on PATH); a pure unit file stands for the rest.
// With TEST_DATABASE=postgres, the files that are not run again are named with the reason.
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

describe('test/run.mjs with TEST_DATABASE=postgres', () => {
  test('names every file it does not run again, and why: SQLite/disk only by nature, or no server started', async () => {
    const { status, output } = await runTests({ TEST_DATABASE: 'postgres' }, 'storage/local.test', 'http/range.test');
    assert.equal(status, 0, output);
    assert.match(output, /SQLite\/disk only by nature \(test\/database-modes\.mjs\):\n {2}test\/server\/storage\/local\.test\.ts: local disk storage itself/);
    assert.match(output, new RegExp(`they start no server, so the database changes nothing in them:\n  ${UNIT_TEST}\n`));
    assert.match(output, /nothing of the matching files runs in the PostgreSQL pass/);
    assert.doesNotMatch(output, /ℹ pass/);
  });

  test('refuses local disk, which PostgreSQL refuses, and a database it does not know', async () => {
    const disk = await runTests({ TEST_DATABASE: 'postgres', TEST_STORAGE: 'file' }, 'http/range.test');
    assert.equal(disk.status, 1, disk.output);
    assert.match(disk.output, /TEST_DATABASE=postgres puts every server on S3 \(PostgreSQL refuses local disk\): unset TEST_STORAGE=file/);
    const unknown = await runTests({ TEST_DATABASE: 'mysql' }, 'http/range.test');
    assert.equal(unknown.status, 1, unknown.output);
    assert.match(unknown.output, /TEST_DATABASE=mysql: expected sqlite \(the default\) or postgres/);
  });
});
