// Where the project's own files are, whether this module runs from its TypeScript source
// (server/paths.ts, under tsx in development and tests) or from the build (dist/server/paths.js,
// `npm run build`, what `npm start` and the systemd unit run): the nearest directory above it
// holding package.json. dist/ has none of its own, so both resolve to the checkout.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function projectRoot(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PROJECT_ROOT = projectRoot(fileURLToPath(import.meta.url));
