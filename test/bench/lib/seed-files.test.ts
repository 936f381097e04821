// The bench's seeding helper (bench/lib/seed-files.ts) must leave a database the real server reads
// as if the files had been uploaded: listed, and counted in usage and the per-user counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE, seedFiles } from '../../../bench/lib/seed-files.ts';
import { openDb } from '../../../server/db/open.ts';
import { parseKey } from '../../../server/storage/keys.ts';
import { startTestServer, tempDir } from '../../helpers/server.ts';

test('seeded files are listed and counted by the real server as the user\'s own', async () => {
  const dataDir = tempDir();
  openDb(dataDir).close();
  const seeded = seedFiles(path.join(dataDir, DB_FILE), 'alice', 250);
  assert.equal(seeded.files, 250);
  const server = await startTestServer({ dataDir });
  try {
    const auth = { Authorization: `Bearer ${await server.token('alice')}` };
    const usage = (await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json()) as { used_bytes: number };
    assert.equal(usage.used_bytes, seeded.bytes);
    const keys: string[] = [];
    for (let cursor: string | undefined; ;) {
      const query = new URLSearchParams({ limit: '100', ...(cursor ? { cursor } : {}) });
      const res = await fetch(`${server.url}/v1/files/all?${query}`, { headers: auth });
      assert.equal(res.status, 200);
      const page = (await res.json()) as { files: { key: string }[]; next_cursor?: string | null };
      keys.push(...page.files.map((f) => f.key));
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    assert.equal(new Set(keys).size, 250);
    for (const key of keys) assert.equal(parseKey(key)?.userId, 'alice', key);
    const bob = { Authorization: `Bearer ${await server.token('bob')}` };
    const other = (await (await fetch(`${server.url}/v1/files/all`, { headers: bob })).json()) as { files: unknown[] };
    assert.equal(other.files.length, 0);
  } finally {
    await server.stop();
  }
});

test('the per-user counters follow the seeded rows, as they follow uploads', () => {
  const dataDir = tempDir();
  try {
    openDb(dataDir).close();
    const first = seedFiles(path.join(dataDir, DB_FILE), 'alice', 300);
    const second = seedFiles(path.join(dataDir, DB_FILE), 'alice', 200);
    const check = openDb(dataDir);
    const row = check.prepare('SELECT used_bytes, reserved_bytes FROM user_usage WHERE user_id = ?').get('alice');
    const sum = check.prepare('SELECT sum(size) AS bytes, count(*) AS n FROM files WHERE user_id = ?').get('alice');
    check.close();
    assert.deepEqual(row, { used_bytes: first.bytes + second.bytes, reserved_bytes: 0 });
    assert.deepEqual(sum, { bytes: first.bytes + second.bytes, n: 500 });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a files column it cannot fill is named instead of guessed', () => {
  const dataDir = tempDir();
  try {
    // A schema from some later migration: a required column the helper has never heard of.
    const db = new Database(path.join(dataDir, DB_FILE));
    db.exec('CREATE TABLE files (key TEXT PRIMARY KEY, user_id TEXT NOT NULL, size INTEGER NOT NULL, owner_kind TEXT NOT NULL) STRICT');
    db.close();
    assert.throws(() => seedFiles(path.join(dataDir, DB_FILE), 'alice', 1), /files\.owner_kind/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
