// The reference shipped in the repository stays complete as the code grows: every variable the
// server reads is in docs/configuration.md, every error code is in docs/api.md with its status,
// and the README stays a short front door that speaks of the product, not of how it was made.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ERROR_CODES } from '../../server/errors.ts';
import { ROOT } from '../helpers/server.ts';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('docs/', () => {
  test('configuration.md explains every variable config.ts reads', () => {
    const doc = read('docs/configuration.md');
    const names = [...read('server/config.ts').matchAll(/\b(?:read|integer|list|url|bool|secret|typeEntries)\('([A-Z0-9_]+)'/g)].map((m) => m[1]!);
    assert.ok(names.length > 30, 'config.ts was read');
    for (const name of names) assert.match(doc, new RegExp(`\`${name}\``), `${name} is in docs/configuration.md`);
  });

  test('api.md lists every error code with its status', () => {
    const doc = read('docs/api.md');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      assert.match(doc, new RegExp(`^\\| \`${code}\`[^|]* \\| ${status} \\|`, 'm'), `${code} (${status}) is in the table of docs/api.md`);
    }
  });

  test('the README is a short front door whose commands are the documented ones', () => {
    const readme = read('README.md');
    assert.ok(readme.split('\n').length < 200, 'README.md is under 200 lines');
    assert.match(readme, /^npm ci && node server\/serve\.mjs\b/m);
    assert.match(readme, /^npm ci && npm test\b/m);
    assert.match(readme, /^### First upload$/m);
    assert.match(readme, /^## Limits and failure behaviour$/m);
    for (const page of ['docs/configuration.md', 'docs/api.md', 'docs/operations.md', 'docs/limits.md', 'docs/README.md']) {
      assert.ok(readme.includes(`(${page})`), `README links ${page}`);
    }
  });

  test('the documentation speaks of the product, not of how it was built', () => {
    const files = ['README.md', 'bench/README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    for (const file of files) {
      const text = read(file);
      for (const pattern of [/\bsessions? \d/i, /\bissue \d/i, /\bthe issue\b/i, /\bSPEC\b/, /\.\.\/shared\//]) {
        assert.doesNotMatch(text, pattern, `${file} mentions ${pattern}`);
      }
    }
  });
});
