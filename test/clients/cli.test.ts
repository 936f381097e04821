// The CLI (clients/cli) run as its npm bin against a real server: an upload killed part-way
// (SIGKILL, and Ctrl-C) resumes from the server's offset; ls, rm, link, zip, usage and token;
// refusals in words with non-zero exit codes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createUserSession } from '../../clients/sdk/node.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { freePort } from '../helpers/free-port.ts';
import { ownTmpDir, uploadBytesHeld } from '../helpers/upload-bytes-held.ts';
import { readWithYauzl } from '../helpers/zip.ts';
import { runCli, startCli, type CliRun } from './helpers/run-cli.ts';
import { startSlowProxy, type SlowProxy } from './helpers/slow-proxy.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;
// On S3 the server gathers a PATCH's bytes in part files there (uploadBytesHeld).
ownTmpDir('sl-cli-tmp-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('CLI upload: interrupted, then resumed from the server offset', () => {
  let proxy: SlowProxy;
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    proxy = await startSlowProxy(2 * MiB);
    server = await startTestServer({ env: { PUBLIC_URL: proxy.url } });
    proxy.target = server.port;
    dir = tempDir('sl-cli-');
    env = { STREAM_LINE_URL: proxy.url, STREAM_LINE_TOKEN: await server.token('alice'), STREAM_LINE_STATE: path.join(dir, 'state.json') };
  });
  after(async () => {
    await proxy.close();
    await server.stop();
  });

  /** Starts an upload through the slow proxy and waits until the server holds part of it. */
  async function uploadUntilPartWay(file: string, size: number): Promise<{ run: CliRun; uploadUrl: string }> {
    proxy.bytesPerSecond = 2 * MiB;
    const run = startCli(['upload', file, '--folder', 'backups'], env);
    const uploadUrl = await waitFor('the state file to name the upload', () => {
      if (!existsSync(env.STREAM_LINE_STATE!)) return undefined;
      const entries = Object.values(JSON.parse(readFileSync(env.STREAM_LINE_STATE!, 'utf8')) as Record<string, { uploadUrl: string }>);
      return entries[0]?.uploadUrl;
    });
    await waitFor('the server to hold some bytes', () => (uploadBytesHeld(server, uploadUrl) >= 256 * 1024 ? true : undefined));
    assert.equal(run.child.exitCode, null, `the CLI is still uploading (stderr: ${run.stderr()})`);
    return { run, uploadUrl };
  }

  /**
   * What the killed CLI had handed to the kernel would still reach the server through the proxy
   * (at full speed once the limit is lifted), maybe to the last byte: cut it, as a lost network would.
   */
  function cutKilledConnection(): void {
    proxy.dropConnections();
  }

  async function resumeAndCheck(file: string, data: Buffer, uploadUrl: string): Promise<void> {
    const session = createUserSession({ baseUrl: server.url, token: env.STREAM_LINE_TOKEN! });
    const before = await session.uploadStatus(uploadUrl);
    assert.ok(before && before.offset > 0 && before.offset < data.length, `part-way at restart: ${before?.offset}`);
    proxy.bytesPerSecond = Infinity;
    const second = await runCli(['upload', file, '--folder', 'backups'], env);
    assert.equal(second.code, 0, second.stderr);
    const resumedAt = Number(/resuming \S+ at byte (\d+) of (\d+)/.exec(second.stderr)?.[1]);
    assert.ok(resumedAt >= before.offset, `resumed at ${resumedAt}, the server had ${before.offset} (stderr: ${second.stderr})`);
    const uploaded = /uploaded \S+ → (\S+) \(.*sha256 ([0-9a-f]{64})\)/.exec(second.stdout);
    assert.ok(uploaded, second.stdout);
    assert.equal(uploaded[2], sha256(data));
    const record = await session.getFileMetadata(uploaded[1]!);
    assert.deepEqual([record.size, record.sha256, record.folder, record.filename], [data.length, sha256(data), 'backups', path.basename(file)]);
    assert.deepEqual(await session.uploadStatus(uploadUrl), { offset: data.length, length: data.length }, 'the same upload was finished, not a new one');
    assert.deepEqual(JSON.parse(readFileSync(env.STREAM_LINE_STATE!, 'utf8')), {}, 'a finished upload leaves the state file');
    await session.deleteFile(record.key);
  }

  test('killed with SIGKILL mid-upload, run again: continues from the offset, sha256 correct', async () => {
    const data = randomBytes(6 * MiB);
    const file = path.join(dir, 'killed.bin');
    writeFileSync(file, data);
    const { run, uploadUrl } = await uploadUntilPartWay(file, data.length);
    run.child.kill('SIGKILL');
    assert.equal(await run.exited, 'SIGKILL');
    cutKilledConnection();
    await resumeAndCheck(file, data, uploadUrl);
  });

  test('Ctrl-C (SIGINT) stops with exit 130 and says how to resume; run again resumes', async () => {
    const data = randomBytes(5 * MiB + 3);
    const file = path.join(dir, 'interrupted.bin');
    writeFileSync(file, data);
    const { run, uploadUrl } = await uploadUntilPartWay(file, data.length);
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 130);
    cutKilledConnection();
    assert.match(run.stderr(), /interrupted: run the same command again to resume/);
    await resumeAndCheck(file, data, uploadUrl);
  });

  test('a run that cannot reach the upload (a refused token) keeps it: the next run resumes it, not a new one', async () => {
    const data = randomBytes(5 * MiB);
    const file = path.join(dir, 'kept.bin');
    writeFileSync(file, data);
    const { run, uploadUrl } = await uploadUntilPartWay(file, data.length);
    run.child.kill('SIGKILL');
    assert.equal(await run.exited, 'SIGKILL');
    cutKilledConnection();
    proxy.bytesPerSecond = Infinity;
    const refused = await runCli(['upload', file, '--folder', 'backups'], { ...env, STREAM_LINE_TOKEN: 'not-a-token' });
    assert.notEqual(refused.code, 0, refused.stderr);
    const kept = Object.values(JSON.parse(readFileSync(env.STREAM_LINE_STATE!, 'utf8')) as Record<string, { uploadUrl: string }>);
    assert.deepEqual(kept.map((e) => e.uploadUrl), [uploadUrl], 'the state file still names the upload');
    await resumeAndCheck(file, data, uploadUrl);
  });

  test('a file changed since the interruption starts a new upload instead of resuming the old one', async () => {
    const file = path.join(dir, 'changed.bin');
    writeFileSync(file, randomBytes(4 * MiB));
    const { run } = await uploadUntilPartWay(file, 4 * MiB);
    run.child.kill('SIGKILL');
    await run.exited;
    cutKilledConnection();
    const data = randomBytes(4 * MiB + 1);
    writeFileSync(file, data);
    proxy.bytesPerSecond = Infinity;
    const again = await runCli(['upload', file, '--folder', 'backups'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /resuming/);
    assert.ok(again.stdout.includes(sha256(data)), again.stdout);
  });
});

describe('CLI commands', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    server = await startTestServer({ env: { QUOTA_DEFAULT_BYTES: '100000' } });
    dir = tempDir('sl-cli-');
    env = { STREAM_LINE_URL: server.url, STREAM_LINE_STATE: path.join(dir, 'state.json') };
  });
  after(() => server.stop());

  test('token, upload, ls, link, zip, usage, rm', async () => {
    const minted = await runCli(['token', 'bob', '--hours', '2', '--service-token', server.serviceToken], env);
    assert.equal(minted.code, 0, minted.stderr);
    const token = minted.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(minted.stderr, /token for bob, expires/);
    const user = { ...env, STREAM_LINE_TOKEN: token };

    writeFileSync(path.join(dir, 'notes.txt'), 'hello notes\n');
    writeFileSync(path.join(dir, 'data.csv'), 'a,b\n1,2\n');
    const up = await runCli(['upload', path.join(dir, 'notes.txt'), path.join(dir, 'data.csv'), '--folder', 'docs'], user);
    assert.equal(up.code, 0, up.stderr);
    const keys = [...up.stdout.matchAll(/→ (\S+) /g)].map((m) => m[1]!);
    assert.equal(keys.length, 2, up.stdout);

    const ls = await runCli(['ls'], user);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /12 B\s+docs\/notes\.txt/);
    assert.match(ls.stdout, /8 B\s+docs\/data\.csv/);
    assert.match(ls.stdout, /2 files, 20 B/);
    const json = JSON.parse((await runCli(['ls', '--folder', 'docs', '--json'], user)).stdout) as Array<{ key: string }>;
    assert.deepEqual(json.map((f) => f.key).sort(), [...keys].sort());
    assert.match((await runCli(['ls', '--folder', 'elsewhere'], user)).stdout, /no files in folder "elsewhere"/);

    const link = await runCli(['link', keys[0]!, '--ttl', '2m'], user);
    assert.equal(link.code, 0, link.stderr);
    const res = await fetch(link.stdout.trim());
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello notes\n');
    const expires = Date.parse(/expires (\S+)/.exec(link.stderr)![1]!) - Date.now();
    assert.ok(expires > 100_000 && expires <= 120_000, `link lives ${expires} ms`);

    const zipPath = path.join(dir, 'out.zip');
    const zip = await runCli(['zip', ...keys, '-o', zipPath], user);
    assert.equal(zip.code, 0, zip.stderr);
    assert.match(zip.stdout, /wrote .*out\.zip \(2 files/);
    const entries = await readWithYauzl(zipPath);
    assert.deepEqual(entries.map((e) => [e.name, e.data.toString()]).sort(), [['docs/data.csv', 'a,b\n1,2\n'], ['docs/notes.txt', 'hello notes\n']]);

    const usage = await runCli(['usage'], user);
    assert.equal(usage.stdout.trim(), 'used 20 B of 97.7 KB (0.0%)');
    assert.deepEqual(JSON.parse((await runCli(['usage', '--json'], user)).stdout), { used_bytes: 20, reserved_bytes: 0, quota_bytes: 100000 });

    const rm = await runCli(['rm', keys[0]!], user);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout.trim(), `deleted ${keys[0]}`);
    assert.match((await runCli(['ls'], user)).stdout, /^1 file, 8 B$/m);
  });

  test('refusals: words on stderr and a non-zero exit code', async () => {
    const user = { ...env, STREAM_LINE_TOKEN: await server.token('carol') };
    const missing = await runCli(['rm', 'users/carol/2020/01/01/00000000000000000000000000000000.bin'], user);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Not found: it may have been deleted/);
    assert.match(missing.stderr, /\(not_found, HTTP 404\)/);

    writeFileSync(path.join(dir, 'big.bin'), randomBytes(100_001));
    const big = await runCli(['upload', path.join(dir, 'big.bin')], user);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /failed .*big\.bin: This file is larger than the server accepts/);
    writeFileSync(path.join(dir, 'half.bin'), randomBytes(60_000));
    assert.equal((await runCli(['upload', path.join(dir, 'half.bin')], user)).code, 0);
    const over = await runCli(['upload', path.join(dir, 'half.bin')], user);
    assert.equal(over.code, 1);
    assert.match(over.stderr, /Not enough storage left in your quota/);

    const expired = await runCli(['ls'], { ...env, STREAM_LINE_TOKEN: await server.token('carol', -60) });
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /Your session token has expired/);
    const badService = await runCli(['token', 'carol', '--service-token', 'wrong-service-token-value'], env);
    assert.equal(badService.code, 1);
    assert.match(badService.stderr, /The token was not accepted/);
    const badTtl = await runCli(['link', 'some/key', '--ttl', '10 years'], user);
    assert.equal(badTtl.code, 2);
    assert.match(badTtl.stderr, /--ttl must be seconds or a duration/);
  });

  test('a wrong server address is named: unreachable, not Stream-Line, or a path with no route', async () => {
    const user = { ...env, STREAM_LINE_TOKEN: await server.token('carol') };
    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await runCli(['usage'], { ...user, STREAM_LINE_URL: closed });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /The server could not be reached/);
    assert.ok(unreachable.stderr.includes(`the server address is ${closed} (from --url or STREAM_LINE_URL)`), unreachable.stderr);

    // Stream-Line under a path it does not serve: "no such route", not "it may have been deleted".
    const wrongPath = await runCli(['ls', '--url', `${server.url}/uploads`], user);
    assert.equal(wrongPath.code, 1);
    assert.match(wrongPath.stderr, /The server has no such route: check its address/);
    assert.ok(wrongPath.stderr.includes(`the server address is ${server.url}/uploads`), wrongPath.stderr);

    // An upload to the wrong place names the address once, not once per file.
    const files = ['one.bin', 'two.bin'].map((name) => path.join(dir, name));
    for (const file of files) writeFileSync(file, randomBytes(10));
    const upload = await runCli(['upload', ...files], { ...user, STREAM_LINE_URL: closed });
    assert.equal(upload.code, 1);
    assert.equal(upload.stderr.match(/^failed /gm)?.length, 2, upload.stderr);
    assert.equal(upload.stderr.match(/the server address is/g)?.length, 1, upload.stderr);

    // A refusal about the file itself says nothing of the address.
    const missing = await runCli(['rm', 'users/carol/2020/01/01/00000000000000000000000000000000.bin'], user);
    assert.equal(missing.code, 1);
    assert.doesNotMatch(missing.stderr, /server address/);
  });

  test('usage mistakes exit 2: no token, no service token, unknown command, missing -o, a server address that is not http(s)', async () => {
    const noToken = await runCli(['ls'], env);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /no user token: pass --token or set STREAM_LINE_TOKEN/);
    const noService = await runCli(['token', 'bob'], env);
    assert.equal(noService.code, 2);
    assert.match(noService.stderr, /no service token/);
    const unknown = await runCli(['frobnicate'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const noOutput = await runCli(['zip', 'a/b'], { ...env, STREAM_LINE_TOKEN: 'x' });
    assert.equal(noOutput.code, 2);
    assert.match(noOutput.stderr, /zip needs -o/);
    for (const url of ['notaurl', 'ftp://127.0.0.1/', 'http://']) {
      const badUrl = await runCli(['ls', '--url', url], env);
      assert.equal(badUrl.code, 2, url);
      assert.match(badUrl.stderr, /--url must be an http:\/\/ or https:\/\/ address/, url);
    }
    const badEnvUrl = await runCli(['ls'], { ...env, STREAM_LINE_URL: '127.0.0.1:8080' });
    assert.equal(badEnvUrl.code, 2);
    assert.match(badEnvUrl.stderr, /STREAM_LINE_URL must be an http:\/\/ or https:\/\/ address .*\(got "127\.0\.0\.1:8080"\)/);
    const help = await runCli(['--help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: stream-line <command>/);
  });
});
