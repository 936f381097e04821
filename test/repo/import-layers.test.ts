// The server's modules stand in layers: a folder of server/ (auth/, db/, storage/, …), each file
// directly in server/, and hooks/ are one part each, and no part reaches, through any chain of
// imports (dynamic ones included), back to itself. A loop between parts means a rule sits in the
// wrong layer: it goes down to a small module that both sides import. This reads the imports the
// way TypeScript does (ts.preProcessFile), so an import in a comment or a string is not one.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/server.ts';

const TREES = ['server', 'hooks'];

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sources(rel);
    return /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** server/auth/jwt.ts → server/auth/; server/config.ts → server/config.ts; hooks/x.ts → hooks/. */
function partOf(file: string): string {
  const [top, second, ...rest] = file.split('/');
  if (top !== 'server') return `${top}/`;
  return rest.length > 0 ? `${top}/${second}/` : file;
}

/** Every import between two files of the trees: [from, to]. */
function imports(): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const file of TREES.flatMap(sources)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName));
      if (TREES.some((tree) => target.startsWith(`${tree}/`))) found.push([file, target]);
    }
  }
  return found;
}

/** The parts on a loop, each loop as the imports between its parts (Tarjan's strongly connected components). */
function loops(edges: Array<[string, string]>): string[][] {
  const next = new Map<string, Set<string>>();
  for (const [from, to] of edges) {
    const [a, b] = [partOf(from), partOf(to)];
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Set());
    if (!next.has(b)) next.set(b, new Set());
    next.get(a)!.add(b);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1) components.push(component);
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((parts) => [
    ...new Set(edges.filter(([from, to]) => partOf(from) !== partOf(to) && parts.includes(partOf(from)) && parts.includes(partOf(to))).map(([from, to]) => `${from} -> ${to}`)),
  ]);
}

test('no import runs back up a layer: the parts of server/ and hooks/ import each other in no loop', () => {
  const found = loops(imports());
  assert.deepEqual(found, [], `imports that close a loop between parts:\n${found.map((loop) => loop.join('\n')).join('\n\n')}`);
});

test('configuration is the ground floor: server/config.ts imports nothing of the server but its own parsers', () => {
  const upward = imports().filter(([from, to]) => from === 'server/config.ts' && !/^server\/config-[a-z-]+\.ts$/.test(to));
  assert.deepEqual(upward, []);
});

test('hooks/ never imports server/routes/', () => {
  const upward = imports().filter(([from, to]) => from.startsWith('hooks/') && to.startsWith('server/routes/'));
  assert.deepEqual(upward, []);
});

test('the reading of imports sees static, type-only, re-exported and dynamic imports', () => {
  const edges = imports().map(([from, to]) => `${from} -> ${to}`);
  for (const expected of [
    'server/auth/jwt.ts -> server/user-id.ts', // import { … } from
    'server/auth/secrets.ts -> server/config.ts', // import type
    'server/storage/damage.ts -> server/db/repo.ts', // export type { … } from
    'server/db/records.ts -> server/locker/pg-locker.ts', // await import(…)
  ]) {
    assert.ok(edges.includes(expected), `${expected} is read`);
  }
});
