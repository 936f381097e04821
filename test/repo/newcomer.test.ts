// What a newcomer does: clone the repository (its committed HEAD) into a temp dir, run the
// README's install and run commands there, then the README's "First upload" commands as written —
// only the address is the one the server picked (PORT=0, so parallel runs never collide) and
// `<id>` is the id from the Location the creation answered, as the README says to fill in. Then a
// restart, which must reuse the build, and the README's test command on one small file.
// The install is a real `npm ci` (from npm's cache when it is warm); its time is reported, never
// asserted.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, tempDir } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';

const README_ADDRESS = 'http://127.0.0.1:8080';
// A cold `npm ci` builds better-sqlite3 from source; the first start compiles everything.
const SLOW_MS = 15 * 60_000;

interface Readme {
  install: string;
  run: string;
  test: string;
  firstUpload: string[];
}

/** The two commands of "Quick start" and the commands of "First upload", continuation lines joined. */
function readReadme(text: string): Readme {
  const runLine = /^(npm ci) && (node server\/serve\.mjs)\b/m.exec(text);
  const testLine = /^npm ci && (npm test)\b/m.exec(text);
  assert.ok(runLine && testLine, 'README has `npm ci && node server/serve.mjs` and `npm ci && npm test`');
  const section = text.slice(text.indexOf('### First upload'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'README has a First upload block');
  const firstUpload = block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  return { install: runLine[1]!, run: runLine[2]!, test: testLine[1]!, firstUpload };
}

/**
 * A newcomer's shell: this environment without what `npm test` put in it for this checkout (npm's
 * npm_* variables, INIT_CWD, its node_modules/.bin on PATH), which would point npm back here, and
 * without NODE_TEST_CONTEXT, which would make a nested test run report to this one.
 */
function newcomerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^npm_/i.test(name) && !['INIT_CWD', 'NODE_TEST_CONTEXT'].includes(name)) env[name] = value;
  }
  env.PATH = (env.PATH ?? '').split(':').filter((dir) => !dir.startsWith(ROOT)).join(':');
  return { ...env, ...extra };
}

function sh(command: string, cwd: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-c', command], { cwd, env: newcomerEnv(env), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<unknown>;
}

/** The README's run command, as the shell runs it; resolves once the server says where it listens. */
async function startServer(command: string, cwd: string): Promise<Started> {
  // `exec`: the shell becomes the command, so the child is what a terminal would be running.
  const child = spawn('bash', ['-c', `exec ${command}`], { cwd, env: newcomerEnv({ PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = await until('the server to listen', () => {
    if (gone) throw new Error(`\`${command}\` exited before listening:\n${out}`);
    return /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"listening"/.exec(out)?.[1];
  }, SLOW_MS);
  return { child, url, output: () => out, exited };
}

async function stop(server: Started | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  await server.exited;
}

describe('a newcomer following the README from a fresh clone', { timeout: 3 * SLOW_MS }, () => {
  const dir = tempDir('sl-newcomer-');
  const clone = path.join(dir, 'stream-line');
  let readme: Readme;
  let server: Started | undefined;

  before(() => {
    const cloned = spawnSync('git', ['clone', '--quiet', ROOT, clone], { encoding: 'utf8' });
    assert.equal(cloned.status, 0, cloned.stderr);
    readme = readReadme(readFileSync(path.join(clone, 'README.md'), 'utf8'));
  });
  after(async () => {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  });

  test('installs and starts with the README\'s commands; the server is the only process', async (t) => {
    const started = Date.now();
    const install = sh(readme.install, clone);
    t.diagnostic(`${readme.install} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(install.status, 0, `${readme.install} failed:\n${install.stdout}${install.stderr}`);
    assert.doesNotMatch(install.stderr, /EBADENGINE|install-scripts|npm warn/i, `${readme.install} printed warnings:\n${install.stderr}`);

    const launched = Date.now();
    server = await startServer(readme.run, clone);
    t.diagnostic(`${readme.run} listened after ${((Date.now() - launched) / 1000).toFixed(1)} s (first start: builds)`);
    assert.ok((await fetch(`${server.url}/healthz`)).ok);
    // The process we started is the one serving, and it has no process left beside it.
    const pid = Number(/"pid":(\d+)[^\n]*"msg":"listening"/.exec(server.output())?.[1]);
    assert.equal(pid, server.child.pid, 'the listening process is the one the command started');
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    assert.equal(children, '', 'the server has no child processes');
  });

  test('the first upload, exactly as the README writes it', () => {
    assert.ok(server, 'the server is running');
    const base = server.url;
    const vars: Record<string, string> = {};
    const outputs: string[] = [];
    for (const written of readme.firstUpload) {
      let command = written.replaceAll(README_ADDRESS, base);
      if (command.includes('<id>')) {
        // "send its bytes to the Location it answered"
        const location = /^location: *(\S+)/im.exec(outputs.at(-1) ?? '')?.[1];
        assert.ok(location, `the creation answered a Location:\n${outputs.at(-1)}`);
        command = command.replace('<id>', location.split('/').at(-1)!);
      }
      const assignment = /^([A-Z_]+)=(.*)$/.exec(command.replace(/\s+#.*$/, ''));
      const result = assignment ? sh(`${command}\nprintf %s "$${assignment[1]}"`, clone, vars) : sh(command, clone, vars);
      assert.equal(result.status, 0, `${written}\n${result.stdout}${result.stderr}`);
      if (assignment) vars[assignment[1]!] = result.stdout;
      outputs.push(result.stdout);
    }
    assert.match(vars.TOKEN ?? '', /^[\w-]+\.[\w-]+\.[\w-]+$/, 'TOKEN is a JWT');
    const [created, patched, listed] = outputs.slice(1);
    assert.match(created!, /^HTTP\/1\.1 201 /);
    assert.match(patched!, /^HTTP\/1\.1 200 /);
    assert.match(patched!, /^x-file-key: users\/alice\/\d{4}\/\d\d\/\d\d\/[0-9a-f]{32}\.txt\r?$/im);
    const files = (JSON.parse(listed!) as { files: Array<{ filename: string; size: number }> }).files;
    assert.deepEqual(files.map((f) => [f.filename, f.size]), [['hello.txt', 5]]);
  });

  test('a restart reuses the build and keeps the file', async (t) => {
    await stop(server);
    const outputs = ['dist/server/main.js', 'clients/web/dist/index.html'].map((f) => path.join(clone, f));
    const before = outputs.map((f) => statSync(f).mtimeMs);
    const launched = Date.now();
    server = await startServer(readme.run, clone);
    t.diagnostic(`restart listened after ${((Date.now() - launched) / 1000).toFixed(1)} s`);
    assert.deepEqual(outputs.map((f) => statSync(f).mtimeMs), before, 'nothing was rebuilt');
    assert.doesNotMatch(server.output(), /web page built/);
    const token = sh('npm run -s token -- alice', clone).stdout.trim();
    const listed = await fetch(`${server.url}/v1/files/all`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(((await listed.json()) as { files: unknown[] }).files.length, 1);
  });

  test('the README\'s test command runs in the clone', async () => {
    await stop(server);
    assert.ok(existsSync(path.join(clone, 'node_modules')));
    const run = sh(`${readme.test} -- test/server/http/range.test.ts`, clone, { TEST_CONCURRENCY: '1' });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /ℹ pass [1-9]\d*\n/);
    assert.match(run.stdout, /ℹ fail 0\n/);
  });
});
