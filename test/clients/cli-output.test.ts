// What the CLI prints, against a real server: on a pseudo-terminal 80 columns wide (a bar per file
// that fits, "done" whole, then the key and the link) and off a terminal (plain lines, no escape
// codes or template placeholders, the key and the link on stdout). The links it prints serve the
// files, and a .txt sent without a type is recorded as text/plain.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createUserSession } from '../../clients/sdk/node.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { runCli, runCliOnTerminal, screenLines } from './helpers/run-cli.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const UPLOADED = /^uploaded (\S+) → (\S+) \((.+), sha256 ([0-9a-f]{64})\)$/;
const LINK = /^link (\S+) → (\S+) \(expires (\S+)\)$/;

describe('CLI output on a terminal and off it', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  let token: string;
  before(async () => {
    server = await startTestServer();
    dir = tempDir('sl-cli-out-');
    token = await server.token('olive');
    env = { STREAM_LINE_URL: server.url, STREAM_LINE_TOKEN: token, STREAM_LINE_STATE: path.join(dir, 'state.json') };
    writeFileSync(path.join(dir, 'notes.txt'), 'some notes\n');
    writeFileSync(path.join(dir, 'a-rather-long-file-name-for-an-eighty-column-terminal.bin'), randomBytes(3 * 1024 * 1024));
  });
  after(() => server.stop());

  /** The key printed for each file; with `links`, also a link line that serves the file's bytes. */
  async function checkResults(lines: string[], files: string[], links: boolean): Promise<string[]> {
    const keys: string[] = [];
    for (const file of files) {
      const uploaded = lines.map((l) => UPLOADED.exec(l.trim())).find((m) => m?.[1] === file);
      assert.ok(uploaded, `no key printed for ${file}:\n${lines.join('\n')}`);
      keys.push(uploaded[2]!);
      if (!links) continue;
      const link = lines.map((l) => LINK.exec(l.trim())).find((m) => m?.[1] === file);
      assert.ok(link, `no link printed for ${file}:\n${lines.join('\n')}`);
      const res = await fetch(link[2]!);
      assert.equal(res.status, 200);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), uploaded[4]);
    }
    return keys;
  }

  test('on an 80-column terminal: bars that fit, "done", then each key; links when asked', async () => {
    const files = [path.join(dir, 'notes.txt'), path.join(dir, 'a-rather-long-file-name-for-an-eighty-column-terminal.bin')];
    const run = await runCliOnTerminal(['upload', ...files, '--folder', 'tty'], env, 80);
    assert.equal(run.code, 0, run.drawn);
    const lines = screenLines(run.drawn);
    for (const line of lines.filter((l) => !UPLOADED.test(l.trim()))) {
      assert.ok([...line].length < 80, `wider than the terminal: ${JSON.stringify(line)}`);
    }
    const bars = lines.filter((l) => /█/.test(l));
    assert.equal(bars.length, 2, lines.join('\n'));
    for (const bar of bars) assert.match(bar, /100% .*\/.* done\s*$/);
    assert.match(bars[0]!, /^notes\.txt\s/);
    assert.match(bars[1]!, /^a-rather-long-file-name…\s/);
    assert.doesNotMatch(run.drawn, /\{(name|size|sent|status|bar)\}/);
    const keys = await checkResults(lines, files, false);
    const session = createUserSession({ baseUrl: server.url, token });
    assert.equal((await session.getFileMetadata(keys[0]!)).content_type, 'text/plain');

    const linked = await runCliOnTerminal(['upload', ...files, '--folder', 'tty', '--link'], env, 80);
    assert.equal(linked.code, 0, linked.drawn);
    await checkResults(screenLines(linked.drawn), files, true);
  });

  test('off a terminal: one line per event on stderr, the key on stdout; links when asked', async () => {
    const files = [path.join(dir, 'notes.txt'), path.join(dir, 'a-rather-long-file-name-for-an-eighty-column-terminal.bin')];
    const run = await runCli(['upload', ...files, '--folder', 'pipe'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr + run.stdout, /\x1b|\r|\{(name|size|sent|status|bar)\}/);
    const stderr = run.stderr.trim().split('\n');
    assert.equal(stderr[0], `uploading ${files[0]} (11 B)`);
    assert.ok(stderr.includes(`uploading ${files[1]} (3.00 MB)`), run.stderr);
    assert.ok(stderr.every((line) => /^(uploading \S+ \(.+\)|\S+: \d0% \(.+ of .+\))$/.test(line)), run.stderr);
    const stdout = run.stdout.trim().split('\n');
    assert.equal(stdout.length, 2, run.stdout);
    await checkResults(stdout, files, false);

    const linked = await runCli(['upload', ...files, '--folder', 'pipe', '--link', '--ttl', '10m'], env);
    assert.equal(linked.code, 0, linked.stderr);
    const lines = linked.stdout.trim().split('\n');
    assert.equal(lines.length, 4, linked.stdout);
    await checkResults(lines, files, true);
    const expires = Date.parse(LINK.exec(lines[1]!)![3]!) - Date.now();
    assert.ok(expires > 8 * 60_000 && expires <= 10 * 60_000, `the link lives ${expires} ms`);
  });
});
