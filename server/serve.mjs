#!/usr/bin/env node
// `node server/serve.mjs` (what `npm start` runs): build what is out of date, then run the server in
// this same process. The builds are child processes that exit before the server loads, so the
// server is the only process left; started through `npm start`, npm stays beside it as its parent.
// Production (deploy/stream-line.service) runs the build, dist/server/main.js, directly.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (...parts) => path.join(root, ...parts);

/**
 * Latest modification time of the files under these paths, build outputs and packages aside.
 * Files only: a build swapping its output in changes its parent directory's time.
 */
function newest(paths) {
  let latest = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const stat = statSync(p);
    if (!stat.isDirectory()) latest = Math.max(latest, stat.mtimeMs);
    else {
      const children = readdirSync(p).filter((name) => name !== 'dist' && name !== 'node_modules');
      latest = Math.max(latest, newest(children.map((name) => path.join(p, name))));
    }
  }
  return latest;
}

function run(what, args) {
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`${what} failed`);
    process.exit(1);
  }
}

// The web page bundles clients/ and types from server/; a new install changes its packages.
// Rebuilt only when one of those is newer than the bundle (esbuild, a few seconds).
const webIndex = at('clients/web/dist/index.html');
const webInputs = [at('clients'), at('server'), at('node_modules/.package-lock.json')];
if (!existsSync(webIndex) || newest(webInputs) > statSync(webIndex).mtimeMs) {
  run('building the web page', ['--import', 'tsx', at('clients/web/build.ts')]);
}

// tsc's build mode compares sources with its build info: an up-to-date build costs a fraction of
// a second, a changed file recompiles incrementally. Without TypeScript (installed with
// --omit=dev) the existing build is used as it is.
const tsc = at('node_modules/typescript/bin/tsc');
if (existsSync(tsc)) run('compiling the server', [tsc, '-b', at('tsconfig.build.json')]);
const main = at('dist/server/main.js');
if (!existsSync(main)) {
  console.error('dist/server/main.js is missing and TypeScript is not installed: run `npm ci` first');
  process.exit(1);
}
await import(pathToFileURL(main).href);
