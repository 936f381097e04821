// DATABASE_URL (docs/configuration.md, docs/several-instances.md): a bad URL, or a combination that
// would lose data, is refused with one line naming the variable and never echoing the password;
// a good one with a bucket is read (test/server/services-postgres.test.ts serves from it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { parseDatabaseUrl } from '../../server/config-database-url.ts';
import { ROOT } from '../helpers/server.ts';

const GOOD = 'postgres://stream:s3cret-pass@db.example:5432/stream_line';
const S3 = { STORAGE: 's3', S3_BUCKET: 'uploads' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('DATABASE_URL', () => {
  test('unset, the records stay in SQLite and nothing changes', () => {
    assert.equal(loadConfig({}).databaseUrl, undefined);
    assert.equal(loadConfig({ DATABASE_URL: '  ' }).databaseUrl, undefined);
  });

  test('postgres:// and postgresql:// URLs with a host and a database are read', () => {
    assert.deepEqual(parseDatabaseUrl(GOOD), { url: GOOD });
    assert.deepEqual(parseDatabaseUrl('postgresql://db.internal/records?sslmode=require'), { url: 'postgresql://db.internal/records?sslmode=require' });
  });

  for (const bad of ['db.example:5432/stream_line', 'mysql://stream:s3cret-pass@db.example/stream_line', 'postgres://stream:s3cret-pass@db.example', 'postgres:///stream_line']) {
    test(`refuses ${JSON.stringify(bad.replace('s3cret-pass', '…'))} in one line that names the variable and not the password`, () => {
      const problems = problemsOf({ ...S3, DATABASE_URL: bad });
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0]!, /^DATABASE_URL: expected /);
      assert.doesNotMatch(problems[0]!, /s3cret-pass/);
    });
  }

  test('with local-disk storage it is refused: each instance would keep its bytes on its own disk', () => {
    const problems = problemsOf({ DATABASE_URL: GOOD, STORAGE: 'file' });
    assert.ok(problems.some((p) => /^DATABASE_URL: .*STORAGE=file.*set STORAGE=s3/.test(p)), problems.join('\n'));
    assert.ok(problems.every((p) => !p.includes('s3cret-pass')));
  });

  test('with a bucket, a good URL is read and nothing is refused', () => {
    assert.deepEqual(problemsOf({ ...S3, DATABASE_URL: GOOD }), []);
    assert.equal(loadConfig({ ...S3, DATABASE_URL: GOOD }).databaseUrl, GOOD);
  });

  test('the server does not start with DATABASE_URL and STORAGE=file, and says why on one line', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, STORAGE: 'file', DATABASE_URL: GOOD, PORT: '0', DATA_DIR: '/nonexistent/never-created' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(result.stderr.trim(), /^configuration error: DATABASE_URL: [^\n]*STORAGE=file[^\n]*$/);
    assert.doesNotMatch(result.stderr, /s3cret-pass/);
  });
});
