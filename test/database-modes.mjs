// The two passes of the suite: SQLite (the default) and PostgreSQL (TEST_DATABASE=postgres, where
// every server the test helpers start gets DATABASE_URL and S3: test/helpers/database.ts). One
// table says which files test SQLite or local disk by nature and so run in the first pass only;
// test/run.mjs names them, with their reason, in the PostgreSQL pass. Every other file that starts
// a server runs in both.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * Files about SQLite or local disk themselves: what they check has no PostgreSQL or S3 twin. A file
 * goes here only for that reason, never because it fails on PostgreSQL.
 */
export const SQLITE_ONLY = [
  {
    tests: ['test/server/storage/local.test.ts'],
    why: 'local disk storage itself: tus sidecar files, fsync, a deleted uploads folder',
  },
  {
    tests: ['test/server/storage-disk-full.test.ts'],
    why: 'a full local disk (a tiny tmpfs DATA_DIR); S3 has no such limit',
  },
  {
    tests: ['test/hooks/finalize-crash-disk.test.ts'],
    why: "crash states forged in local disk's layout: a rename half done, orphaned bytes in uploads/",
  },
  {
    tests: ['test/server/db-usage-counters-migration.test.ts'],
    why: "SQLite's migration to the usage counters; PostgreSQL's schema had them from its first migration",
  },
  {
    tests: ['test/bench/lib/seed-files.test.ts'],
    why: "the bench's seeder writes rows straight into a SQLite file",
  },
  {
    tests: ['test/repo/newcomer.test.ts'],
    why: "the README's first steps: no configuration, so SQLite and local disk",
  },
  {
    tests: ['test/server/routes/uploads-finish-failure-disk.test.ts'],
    why: "a finish failure forged in local disk's layout: a plain file where the user's directory must go",
  },
  {
    tests: ['test/server/auth/secrets.test.ts'],
    why: "DATA_DIR/secrets.json, the single instance's key store; with DATABASE_URL the keys live in PostgreSQL (test/server/cluster-background.test.ts)",
  },
];

export function sqliteOnlyReason(file) {
  return SQLITE_ONLY.find((row) => row.tests.some((t) => file.includes(t)))?.why;
}

// A test server is started through test/helpers/server.ts; where they are defined is no caller.
const STARTS_SERVER = /\b(startTestServer|spawnServer)\(/;
const DEFINES = 'test/helpers/server.ts';

/**
 * Whether a test file starts a server through the helpers, itself or through a test module it
 * imports: only such a file can behave differently on PostgreSQL.
 */
export function startsServer(root, file, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  const source = readFileSync(join(root, file), 'utf8');
  if (file !== DEFINES && STARTS_SERVER.test(source)) return true;
  for (const [, spec] of source.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = relative(root, resolve(root, dirname(file), spec));
    if (target.startsWith('test/') && existsSync(join(root, target)) && startsServer(root, target, seen)) return true;
  }
  return false;
}
