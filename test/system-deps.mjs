// Installs the Debian packages the tests use (.ci/apt-packages) when any is missing, so that
// `npm test` on a fresh machine needs nothing else. Needs root (CI and these machines are root);
// otherwise it names the missing packages and stops.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export function ensureSystemPackages(listFile) {
  const wanted = readFileSync(listFile, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
  const missing = wanted.filter((pkg) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.error(`tests need these Debian packages: ${missing.join(' ')}\n  sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  console.error(`installing Debian packages the tests use: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`apt-get ${args.join(' ')} failed with ${r.status}`);
      process.exit(1);
    }
  };
  run(['update']);
  run(['install', '-y', '--no-install-recommends', ...missing]);
}
