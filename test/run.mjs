#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's own test runner (TypeScript through tsx).
// Node 20's `--test` takes no globs, so the file list is built here.
//   npm test                      every file whose programs are on this machine; the rest are named
//   npm test -- sharing quota     files whose path contains "sharing" or "quota"
//   npm test -- --install-deps    first apt-get install what the chosen files need (root)
//   TEST_DATABASE=postgres npm test   the PostgreSQL pass: every file that starts a server, each
//                                 server on PostgreSQL and S3 (test/database-modes.mjs says which
//                                 files are left to the SQLite pass, and why; they are named)
// With CI set, missing programs are installed and a file that still cannot run fails the run:
// CI runs everything. What each file needs is one table, test/system-deps.mjs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sqliteOnlyReason, startsServer } from './database-modes.mjs';
import { aptPackages, CAPABILITIES, installPackages, needsOf, runsOnBothBackends } from './system-deps.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const installAsked = args.includes('--install-deps');
const filters = args.filter((a) => a !== '--install-deps');
const ci = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const matched = walk(join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

if (matched.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const storage = process.env.TEST_STORAGE;
const database = process.env.TEST_DATABASE || 'sqlite';
if (!['sqlite', 'postgres'].includes(database)) fail(`TEST_DATABASE=${database}: expected sqlite (the default) or postgres`);
const onPostgres = database === 'postgres';
if (onPostgres && storage === 'file') fail('TEST_DATABASE=postgres puts every server on S3 (PostgreSQL refuses local disk): unset TEST_STORAGE=file');

// The PostgreSQL pass runs again only what the database can change: files that start a server.
const byNature = [];
const alreadyOnPostgres = [];
const noServer = [];
const files = matched.filter((f) => {
  if (!onPostgres) return true;
  const why = sqliteOnlyReason(f);
  if (why) byNature.push(`${f}: ${why}`);
  else if (!startsServer(root, f)) noServer.push(f);
  else if (needsOf(f).includes('postgres')) alreadyOnPostgres.push(f);
  else return true;
  return false;
});

// The table may only name packages CI installs.
const listed = new Set(aptPackages(join(root, '.ci/apt-packages')));
for (const [name, cap] of Object.entries(CAPABILITIES)) {
  const unlisted = cap.packages.filter((p) => !listed.has(p));
  if (unlisted.length > 0) fail(`test/system-deps.mjs: ${name} needs ${unlisted.join(', ')}, which .ci/apt-packages does not list`);
}

const onBothBackends = new Set(storage === 'file' ? [] : files.filter((f) => runsOnBothBackends(readFileSync(join(root, f), 'utf8'))));
// On PostgreSQL every server stores on S3: every file needs both.
const passNeeds = (f) => (onPostgres ? ['postgres', 'swift'] : onBothBackends.has(f) ? ['swift'] : []);
const needs = new Map(files.map((f) => [f, [...new Set([...needsOf(f), ...passNeeds(f)])]]));
const wanted = [...new Set([...needs.values()].flat())];
let missing = wanted.filter((name) => !CAPABILITIES[name].present());

if (missing.length > 0 && (ci || installAsked)) {
  installPackages(missing.flatMap((name) => CAPABILITIES[name].packages));
  missing = missing.filter((name) => !CAPABILITIES[name].present());
}
if (missing.length > 0 && ci) {
  fail(`CI runs every test, but these are missing: ${missing.map((name) => `${name} (${CAPABILITIES[name].what})`).join('; ')}`);
}

// Without Swift, files that run on both backends still run on local disk; named with S3 they cannot.
const env = { ...process.env };
const notes = [];
const s3Missing = missing.includes('swift') && onBothBackends.size > 0 && !onPostgres;
if (s3Missing && storage !== 's3') {
  env.TEST_STORAGE = 'file';
  notes.push(`ran on local disk only, not on S3 (needs swift): ${[...onBothBackends].join(', ')}`);
}
const skipped = [];
const toRun = files.filter((f) => {
  // Off PostgreSQL, a file on both backends without Swift still runs on local disk (above).
  const absent = (onPostgres ? needs.get(f) : needsOf(f)).filter((name) => missing.includes(name));
  if (s3Missing && storage === 's3' && onBothBackends.has(f) && !absent.includes('swift')) absent.push('swift');
  if (absent.length > 0) skipped.push(`${f}: needs ${absent.join(', ')}`);
  return absent.length === 0;
});

function passReport() {
  if (!onPostgres) return;
  console.error('\nPostgreSQL pass (TEST_DATABASE=postgres): every server the test helpers start is on PostgreSQL and S3');
  const section = (title, lines) => {
    if (lines.length === 0) return;
    console.error(`${title}:`);
    for (const line of lines) console.error(`  ${line}`);
  };
  section('not run again, SQLite/disk only by nature (test/database-modes.mjs)', byNature);
  section('not run again, on PostgreSQL in the SQLite pass already', alreadyOnPostgres);
  section('not run again, they start no server, so the database changes nothing in them', noServer);
  console.error('');
}

function report() {
  passReport();
  if (skipped.length === 0 && notes.length === 0) return;
  console.error('\nnot run on this machine:');
  for (const line of [...skipped, ...notes]) console.error(`  ${line}`);
  console.error('what they need:');
  for (const name of missing) console.error(`  ${name}: ${CAPABILITIES[name].what} (Debian: ${CAPABILITIES[name].packages.join(' ')})`);
  console.error('install it all with `npm test -- --install-deps` (as root), or: apt-get install $(grep -v "^#" .ci/apt-packages)\n');
}

report();
if (files.length === 0) {
  console.error('nothing of the matching files runs in the PostgreSQL pass (see above)');
  process.exit(0);
}
if (toRun.length === 0) fail('every matching test file needs something this machine lacks');

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...toRun],
  { cwd: root, stdio: 'inherit', env },
);
report();
process.exit(result.status ?? 1);

function fail(message) {
  console.error(message);
  process.exit(1);
}
