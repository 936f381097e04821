// deploy/stream-line@.service, the template for several instances on one machine: the single
// instance's unit (deploy/stream-line.service) with the port and data directory taken from the
// instance name and DATABASE_URL required, so its hardening cannot drift from the one
// docs/operations.md describes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/server.ts';

const settings = (file: string) =>
  readFileSync(path.join(ROOT, file), 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('#'));

describe('deploy/stream-line@.service', () => {
  test('is the single unit with PORT and DATA_DIR from the instance name, and a shared database required', () => {
    const single = settings('deploy/stream-line.service');
    const template = settings('deploy/stream-line@.service');
    const differs = (a: string[], b: string[]) => a.filter((line) => !b.includes(line));
    assert.deepEqual(differs(template, single), [
      'Description=Stream-Line Upload instance on port %i (resumable upload server)',
      'Documentation=file:///opt/stream-line/docs/several-instances.md',
      `ExecStartPre=/bin/sh -c 'test -n "$$DATABASE_URL" || { echo "stream-line@%i: DATABASE_URL must be set in /etc/stream-line/stream-line.env: several instances share one database (docs/several-instances.md)" >&2; exit 1; }'`,
      'ExecStart=/usr/bin/env PORT=%i DATA_DIR=/var/lib/stream-line/%i /usr/bin/node dist/server/main.js',
      'StateDirectory=stream-line/%i',
      'ReadWritePaths=/var/lib/stream-line/%i',
    ]);
    assert.deepEqual(differs(single, template).map((line) => line.split('=')[0]), ['Description', 'Documentation', 'ExecStart', 'StateDirectory', 'ReadWritePaths']);
  });

  test('its start-up check stops an instance without DATABASE_URL, saying so, and passes one with it', () => {
    // As systemd runs it for stream-line@8081: %i is the instance, $$ a literal $.
    const line = settings('deploy/stream-line@.service').find((l) => l.startsWith('ExecStartPre='))!;
    const script = /^ExecStartPre=\/bin\/sh -c '(.*)'$/.exec(line)![1]!.replaceAll('%i', '8081').replaceAll('$$', '$');
    const run = (env: Record<string, string>) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
    const without = run({});
    assert.equal(without.status, 1);
    assert.match(without.stderr, /^stream-line@8081: DATABASE_URL must be set/);
    assert.equal(run({ DATABASE_URL: 'postgres://u:p"$`x@db.example/records' }).status, 0);
  });

  test('systemd accepts an instance of it', (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sl-unit-'));
    try {
      copyFileSync(path.join(ROOT, 'deploy/stream-line@.service'), path.join(dir, 'stream-line@.service'));
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', path.join(dir, 'stream-line@8081.service')], {
        encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
      });
      if (verify.error) return t.skip('systemd-analyze is not installed');
      assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '');
      assert.equal(verify.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
