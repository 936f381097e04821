// The PostgreSQL test server (test/support/postgres.ts): what it starts runs as `postgres`, answers
// its URL and nothing without the password, and leaves nothing behind, even when the test process
// that started it is killed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import pg from 'pg';
import { until } from '../helpers/until.ts';
import { POSTGRES_MISSING, startPostgres } from './postgres.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('PostgreSQL test server', { skip: POSTGRES_MISSING, timeout: 180_000 }, () => {
  test('runs as postgres on its URL, refuses a wrong password, and stop() removes the process and the folder', async () => {
    const server = await startPostgres();
    try {
      assert.notEqual(uidOf(server.pid), 0, 'the postmaster does not run as root');
      const client = new pg.Client(server.url);
      await client.connect();
      const { rows } = await client.query<{ user: string }>('SELECT current_user AS user');
      assert.equal(rows[0]!.user, 'postgres');
      await client.end();
      const wrong = new URL(server.url);
      wrong.password = 'wrong';
      const intruder = new pg.Client(wrong.toString());
      await assert.rejects(intruder.connect(), /password authentication failed/);
    } finally {
      await server.stop();
    }
    assert.equal(alive(server.pid), false);
    assert.equal(existsSync(server.dir), false);
  });

  test('the server goes down with a test process killed before stop()', async () => {
    const script = `
      import { startPostgres } from './test/support/postgres.ts';
      const server = await startPostgres();
      process.stdout.write(JSON.stringify({ pid: server.pid, dir: server.dir }) + '\\n');
      setInterval(() => {}, 60_000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    const line = await until('the child to start PostgreSQL', () => output.split('\n').find((l) => l.startsWith('{')) || child.exitCode !== null);
    child.kill('SIGKILL');
    assert.equal(typeof line, 'string', 'the child started a server');
    const { pid, dir } = JSON.parse(line as string) as { pid: number; dir: string };
    await until('the orphaned postmaster to exit', () => !alive(pid));
    rmSync(dir, { recursive: true, force: true }); // nobody was left to remove it
  });
});
