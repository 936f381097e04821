// The CLI installed as a user installs it, away from the repository: `npm pack`, then
// `npm install -g --prefix <temp>` of the tarball (or of the checkout itself, which npm links),
// then `stream-line` from the new prefix's bin, run in another directory against a real server.
// The tarball install is slow (npm installs every dependency of the package), so it runs once
// with everything checked in one go.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { runCli, runCliOnTerminal, screenLines } from './helpers/run-cli.ts';

const run = promisify(execFile);

/** npm as a user runs it: none of the npm_* settings `npm test` put into this process. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !/^npm_/i.test(k) && v !== undefined)) as Record<string, string>;
  return { ...env, ...extra };
}

describe('CLI installed from a packed tarball or a clone', () => {
  let server: TestServer;
  let work: string;
  before(async () => {
    server = await startTestServer();
    work = tempDir('sl-cli-install-');
  });
  after(() => server.stop());

  /** Uploads from a directory outside the repository with the installed bin; the key and link work. */
  async function uploadFromElsewhere(bin: string, user: string): Promise<{ elsewhere: string; env: Record<string, string> }> {
    const elsewhere = tempDir('sl-cli-elsewhere-');
    writeFileSync(path.join(elsewhere, 'hello.txt'), 'hello from anywhere\n');
    const env = {
      STREAM_LINE_URL: server.url,
      STREAM_LINE_TOKEN: await server.token(user),
      STREAM_LINE_STATE: path.join(elsewhere, 'state.json'),
    };
    const piped = await runCli(['upload', 'hello.txt', '--link'], env, { bin, cwd: elsewhere });
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, new RegExp(`^uploaded hello\\.txt → users/${user}/\\S+\\.txt \\(20 B, sha256 [0-9a-f]{64}\\)$`, 'm'));
    const link = /^link hello\.txt → (\S+) /m.exec(piped.stdout);
    assert.ok(link, piped.stdout);
    assert.equal(await (await fetch(link[1]!)).text(), 'hello from anywhere\n');
    return { elsewhere, env };
  }

  test('npm install -g of the checkout links it: stream-line runs from another directory', async () => {
    const prefix = path.join(work, 'linked');
    await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', ROOT], { cwd: work, env: userEnv() });
    await uploadFromElsewhere(path.join(prefix, 'bin', 'stream-line'), 'ivan');
  });

  test('npm pack, npm install -g --prefix, then stream-line from another directory', { timeout: 30 * 60_000 }, async () => {
    const packed = await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, env: userEnv() });
    const tarball = path.join(work, packed.stdout.trim().split('\n').pop()!);
    const prefix = path.join(work, 'prefix');
    // --ignore-scripts: the CLI needs no native build (the server's SQLite driver is not used by it).
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], {
      cwd: work,
      env: userEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });
    const bin = path.join(prefix, 'bin', 'stream-line');
    const { elsewhere, env } = await uploadFromElsewhere(bin, 'ines');

    const onTerminal = await runCliOnTerminal(['upload', 'hello.txt'], env, 80, { bin, cwd: elsewhere });
    assert.equal(onTerminal.code, 0, onTerminal.drawn);
    assert.ok(screenLines(onTerminal.drawn).some((l) => /^uploaded hello\.txt → users\/ines\//.test(l)), onTerminal.drawn);
    const sha = createHash('sha256').update('hello from anywhere\n').digest('hex');
    assert.ok(onTerminal.drawn.includes(sha));
  });
});
