// What the test files need from the machine beyond Node: programs from Debian packages. One table
// says which file needs what; test/run.mjs runs the files whose programs are here, installs the
// missing ones only where it may (CI, or `--install-deps`), and names every file it leaves out.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** Each thing a test may need: how to tell it is here, and the Debian packages that bring it. */
export const CAPABILITIES = {
  unzip: {
    what: 'Info-ZIP unzip, a second opinion on every archive',
    packages: ['zip', 'unzip'],
    present: () => existsSync('/usr/bin/unzip'),
  },
  swift: {
    what: 'OpenStack Swift with s3api and memcached, the S3 server (test/support/swift.ts)',
    packages: ['swift', 'swift-proxy', 'swift-account', 'swift-container', 'swift-object', 'memcached'],
    present: () =>
      ['proxy', 'account', 'container', 'object'].every((role) => existsSync(`/usr/bin/swift-${role}-server`)) &&
      existsSync('/usr/bin/memcached'),
  },
  chromium: {
    what: 'Chromium, driven by playwright-core (test/clients/helpers/browser.ts)',
    packages: ['chromium'],
    present: () => existsSync('/usr/bin/chromium'),
  },
  caddy: {
    what: 'Caddy, the production reverse proxy (test/edge/caddy-process.ts)',
    packages: ['caddy'],
    present: () => onPath('caddy'),
  },
  clamd: {
    what: 'ClamAV clamd (test/support/clamd.ts)',
    packages: ['clamav-daemon'],
    present: () => existsSync('/usr/sbin/clamd'),
  },
  python_tus: {
    // Debian's python3, not a pyenv/venv one first on PATH: the Debian modules are seen by it only.
    what: 'Debian python3 with tuspy and requests',
    packages: ['python3-tuspy', 'python3-requests'],
    present: () => spawnSync('/usr/bin/python3', ['-c', 'import tusclient, requests'], { stdio: 'ignore' }).status === 0,
  },
  python_guide: {
    what: 'Debian python3 with requests and PyJWT, for the original client guide (test/fixtures/original-client)',
    packages: ['python3-requests', 'python3-jwt'],
    present: () => spawnSync('/usr/bin/python3', ['-c', 'import requests, jwt'], { stdio: 'ignore' }).status === 0,
  },
  python: {
    what: "Debian's python3 (the Python client's tests, and a pseudo-terminal for the CLI's)",
    packages: ['python3'],
    present: () => existsSync('/usr/bin/python3'),
  },
  postgres: {
    what: 'PostgreSQL server programs (initdb, postgres)',
    packages: ['postgresql'],
    present: () => postgresBinDir() !== undefined,
  },
};

/**
 * Which test files need what: a file needs every capability of every row one of whose patterns is
 * part of its path. A file in no row needs nothing but Node.
 */
export const TEST_NEEDS = [
  { tests: ['test/server/routes/batch-download.test.ts', 'test/server/zip/zip-stream.test.ts'], needs: ['unzip'] },
  { tests: ['test/support/swift.test.ts', 'test/server/storage-contract.test.ts', 'test/server/routes/uploads-disconnect-s3', 'test/server/storage-outage.test.ts'], needs: ['swift'] },
  { tests: ['test/clients/web', 'test/server/http/cors-credentials.test.ts', 'test/server/api-docs/docs-route.test.ts'], needs: ['chromium'] },
  { tests: ['test/edge/caddy.test.ts', 'test/edge/caddy-round-robin.test.ts', 'test/edge/caddy-refusal.test.ts'], needs: ['caddy'] },
  { tests: ['test/server/scan.test.ts', 'test/server/scan/clamd.test.ts'], needs: ['clamd'] },
  { tests: ['test/clients/python', 'test/clients/cli-output'], needs: ['python'] },
  { tests: ['test/server/tus-checksum.test.ts', 'test/server/routes/finished-uploads'], needs: ['python_tus'] },
  { tests: ['test/compat/original-client.test.ts'], needs: ['python_guide'] },
  { tests: ['postgres', 'test/server/locker/', 'test/server/db/'], needs: ['postgres'] },
  { tests: ['test/server/services-postgres.test.ts', 'test/server/cluster-background.test.ts', 'test/server/postgres-outage.test.ts'], needs: ['postgres', 'swift'] },
  { tests: ['test/edge/cluster.test.ts'], needs: ['postgres', 'swift', 'caddy', 'clamd'] },
];

/**
 * Files that call backendsUnderTest() run once per storage backend; their S3 half needs Swift.
 * Without Swift they still run on local disk (TEST_STORAGE=file), and the runner says so.
 */
export function runsOnBothBackends(source) {
  return /\bbackendsUnderTest\(/.test(source);
}

export function needsOf(file) {
  return [...new Set(TEST_NEEDS.filter((row) => row.tests.some((t) => file.includes(t))).flatMap((row) => row.needs))];
}

/** Every package of .ci/apt-packages, which CI installs; the table may name no other. */
export function aptPackages(listFile) {
  return readFileSync(listFile, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** apt-get install of these packages; false (with the reason printed) when it cannot. */
export function installPackages(packages) {
  if (process.getuid?.() !== 0) {
    console.error(`installing Debian packages needs root:\n  sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`);
    return false;
  }
  console.error(`installing Debian packages the tests use: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...packages]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`apt-get ${args.join(' ')} failed with ${r.status ?? r.error}`);
      return false;
    }
  }
  return true;
}

function onPath(program) {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/${program}`));
}

/** Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<major>/bin, off PATH. */
export function postgresBinDir() {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const major of readdirSync(root).sort().reverse()) {
      if (existsSync(`${root}/${major}/bin/initdb`)) return `${root}/${major}/bin`;
    }
  }
  const initdb = (process.env.PATH ?? '').split(':').find((dir) => dir !== '' && existsSync(`${dir}/initdb`));
  return initdb;
}
