// The Python client (clients/python) against a real server: its own unittest suite
// (clients/python/tests), run by every Python 3.9+ interpreter a user may have here — Debian's
// /usr/bin/python3 first, and the first python3 on PATH when that is another one (pyenv) — with
// the server's URL and tokens in its environment. Any Python failure fails this test, with the
// Python output in the message.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, startTestServer, type TestServer } from '../helpers/server.ts';

const PACKAGE = path.join(ROOT, 'clients/python');
const MiB = 1024 * 1024;
const MINIMUM: [number, number] = [3, 9];
// The suite polls with its own (generous) limits; this only keeps a wedged interpreter from hanging the run.
const SUITE_TIMEOUT_MS = 10 * 60_000;

interface Interpreter {
  executable: string;
  version: string;
}

/**
 * Distinct interpreters, by the executable they really are (the pyenv shim resolves to its python).
 * STREAM_LINE_TEST_PYTHONS adds more (colon-separated paths), e.g. a 3.9 to check the oldest promised.
 */
function findInterpreters(): { usable: Interpreter[]; tooOld: string[] } {
  const usable = new Map<string, Interpreter>();
  const tooOld: string[] = [];
  const extra = (process.env.STREAM_LINE_TEST_PYTHONS ?? '').split(':').filter(Boolean);
  for (const command of ['/usr/bin/python3', 'python3', ...extra]) {
    if (command.startsWith('/') && !existsSync(command)) continue;
    const probe = spawnSync(command, ['-c', 'import sys; print(sys.executable); print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    const [executable, version] = probe.stdout.trim().split('\n') as [string, string];
    const [major, minor] = version.split('.').map(Number) as [number, number];
    if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
      tooOld.push(`${command} (${version})`);
      continue;
    }
    const real = realpathSync(executable);
    if (!usable.has(real)) usable.set(real, { executable, version });
  }
  return { usable: [...usable.values()], tooOld };
}

async function runSuite(python: Interpreter, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(python.executable, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
    cwd: PACKAGE,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}), PYTHONDONTWRITEBYTECODE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      output += `could not run ${python.executable} in ${PACKAGE}: ${error.message}\n`;
      resolve(null);
    });
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  return { code, output };
}

const { usable, tooOld } = findInterpreters();

describe('Python client', () => {
  test('a Python 3.9+ interpreter is there to run it', () => {
    assert.ok(usable.length > 0, `no python3 of version ${MINIMUM.join('.')} or newer (found: ${tooOld.join(', ') || 'none'})`);
  });

  for (const python of usable) {
    describe(`under ${python.executable} (${python.version})`, () => {
      let server: TestServer;
      before(async () => {
        // A quota small enough to exceed with a sparse file, and a largest upload above it, so the
        // suite meets both refusals.
        server = await startTestServer({ env: { QUOTA_DEFAULT_BYTES: String(64 * MiB), MAX_UPLOAD_BYTES: String(128 * MiB) } });
      });
      after(() => server.stop());

      test('its unittest suite passes against the real server', async () => {
        const { code, output } = await runSuite(python, {
          STREAM_LINE_TEST_URL: server.url,
          STREAM_LINE_TEST_SERVICE_TOKEN: server.serviceToken,
          STREAM_LINE_TEST_USER: 'py-env-user',
          STREAM_LINE_TEST_TOKEN: await server.token('py-env-user'),
          STREAM_LINE_TEST_EXPIRED_TOKEN: await server.token('py-env-user', -60),
          STREAM_LINE_TEST_MAX_UPLOAD_BYTES: String(128 * MiB),
        });
        assert.equal(code, 0, `the Python tests failed (exit ${code}):\n${output}`);
        const ran = /^Ran (\d+) tests? in /m.exec(output);
        assert.ok(ran && Number(ran[1]) >= 20, `expected the whole suite to run:\n${output}`);
        assert.doesNotMatch(output, /skipped/, `no test may be skipped here:\n${output}`);
      });
    });
  }
});
