// The SQLite schema before the usage counters (user_usage) gets them from its rows when it is
// migrated. PostgreSQL's schema had the counters from its first migration, so this is SQLite's alone
// (test/database-modes.mjs).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MIGRATIONS } from '../../server/db/open.ts';
import { startTestServer, tempDir } from '../helpers/server.ts';
import { createUpload, patchUpload } from '../helpers/tus.ts';
import { expectTotals } from './usage-totals.ts';

describe('usage counters on SQLite', () => {
  test('a database from before the counters gets them from its rows when it is migrated', async () => {
    const dataDir = tempDir();
    let server = await startTestServer({ dataDir });
    const auth = { Authorization: `Bearer ${await server.token('xena')}` };
    const done = (await createUpload(server.url, auth, 400)).headers.get('location')!;
    assert.equal((await patchUpload(done, auth, 0, Buffer.alloc(400))).status, 200);
    await createUpload(server.url, auth, 250);
    // Back to the schema without counters: what a database written by the previous release holds.
    const db = server.services.db;
    // Back to the version before the counters' migration; the ones after it run again (idempotent).
    const version = MIGRATIONS.findIndex((sql) => sql.includes('CREATE TABLE user_usage')) + 1;
    assert.ok(version > 0, 'the counters migration is found');
    for (const { name } of db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('uploads', 'files')").all()) {
      db.exec(`DROP TRIGGER ${name}`);
    }
    db.exec('DROP TABLE user_usage');
    db.pragma(`user_version = ${version - 1}`);
    await server.stop({ keepData: true });

    server = await startTestServer({ dataDir });
    try {
      await expectTotals(server, auth, 'xena', [400, 250, 1], 'migrated');
    } finally {
      await server.stop();
    }
  });
});
