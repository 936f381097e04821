// What a V8 heap snapshot holds that an earlier one of the same process did not, grouped so that a
// reader can name the code that keeps it: objects by constructor, closures and suspended async
// functions by their function's name and source line, and nameless internals (arrays, contexts,
// property arrays) by the object and edge that hold them. Object ids are stable across the
// snapshots of one process, so "new" means "id not in the first snapshot".
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

type Raw = {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]]; location_fields: string[] } };
  nodes: number[];
  edges: number[];
  locations: number[];
  strings: string[];
};

export type Group = { count: number; bytes: number };
export type HeapDiff = { groups: Map<string, Group>; total: Group };

/** Parses a .heapsnapshot file into flat arrays and the accessors the grouping needs. */
async function load(file: string) {
  const raw = JSON.parse(await readFile(file, 'utf8')) as Raw;
  const meta = raw.snapshot.meta;
  const NF = meta.node_fields.length;
  const EF = meta.edge_fields.length;
  const LF = meta.location_fields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings, locations } = raw;
  const count = nodes.length / NF;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, at = 0; i < count; i++) {
    firstEdge[i] = at;
    at += nodes[i * NF + 4]! * EF;
    firstEdge[i + 1] = at;
  }
  const line = new Map<number, number>();
  for (let k = 0; k < locations.length; k += LF) line.set(locations[k]! / NF, locations[k + 2]!);
  return {
    count,
    type: (i: number) => nodeTypes[nodes[i * NF]!]!,
    name: (i: number) => strings[nodes[i * NF + 1]!]!,
    id: (i: number) => nodes[i * NF + 2]!,
    size: (i: number) => nodes[i * NF + 3]!,
    line: (i: number) => line.get(i),
    /** [edge type, edge name (or index), target node] of each edge from `i`. */
    *edges(i: number): Generator<[string, string, number]> {
      for (let k = firstEdge[i]!; k < firstEdge[i + 1]!; k += EF) {
        const t = edgeTypes[edges[k]!]!;
        const n = edges[k + 1]!;
        yield [t, t === 'element' || t === 'hidden' ? String(n) : strings[n]!, edges[k + 2]! / NF];
      }
    },
  };
}

type Snapshot = Awaited<ReturnType<typeof load>>;

/** The ids of every object in a snapshot. */
export async function idsOf(file: string): Promise<Set<number>> {
  const s = await load(file);
  const ids = new Set<number>();
  for (let i = 0; i < s.count; i++) ids.add(s.id(i));
  return ids;
}

/**
 * Objects of `file` whose id is not in `before`, grouped (see above). `byHolder`: plain Objects,
 * Arrays, Maps, Promises, strings and numbers are labelled by what holds them too (many more groups).
 */
export async function newObjects(file: string, before: Set<number>, root: string, byHolder = false): Promise<HeapDiff> {
  const s = await load(file);
  const fresh = new Uint8Array(s.count);
  for (let i = 0; i < s.count; i++) if (!before.has(s.id(i))) fresh[i] = 1;
  // Who holds each new nameless object: a new holder first (what the growth is made of), else any.
  const holder = new Int32Array(s.count).fill(-1);
  const holderEdge: string[] = [];
  for (let i = 0; i < s.count; i++) {
    for (const [t, name, to] of s.edges(i)) {
      if (!fresh[to] || t === 'weak' || t === 'shortcut') continue;
      if (holder[to] === -1 || (fresh[i] && !fresh[holder[to]!])) {
        holder[to] = i;
        holderEdge[to] = t === 'element' || t === 'hidden' ? '[]' : name;
      }
    }
  }
  const labels = new Map<number, string>();
  const label = (i: number, depth = 0): string => {
    const known = labels.get(i);
    if (known !== undefined) return known;
    const own = ownLabel(s, i, root);
    const held = depth < 4 && holder[i] !== -1;
    // A generic object (a plain Object, an Array, a string) says little by itself: name its holder.
    const made =
      own !== null && !(byHolder && GENERIC.has(own) && held)
        ? own
        : held
          ? `${own ?? anonymous(s, i)} of ${label(holder[i]!, depth + 1)} .${holderEdge[i]}`
          : (own ?? anonymous(s, i));
    labels.set(i, made);
    return made;
  };
  const groups = new Map<string, Group>();
  const total: Group = { count: 0, bytes: 0 };
  for (let i = 0; i < s.count; i++) {
    if (!fresh[i]) continue;
    const key = label(i);
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.size(i);
    groups.set(key, g);
    total.count++;
    total.bytes += s.size(i);
  }
  return { groups, total };
}

/** Labels too generic to say whose an object is. */
const GENERIC = new Set(['Object', 'Array', 'Map', 'Set', 'Promise', '(strings)', '(heap numbers)']);

/** A label that names the code responsible, or null for a nameless internal (labelled by its holder). */
function ownLabel(s: Snapshot, i: number, root: string): string | null {
  const type = s.type(i);
  const name = s.name(i);
  if (type === 'closure') return `closure ${name || '(anonymous)'} ${where(s, i, root)}`;
  if (type === 'object' && (name === 'Generator' || name === 'AsyncGenerator')) {
    for (const [, edge, to] of s.edges(i)) if (edge === 'function') return `suspended async ${s.name(to) || '(anonymous)'} ${where(s, to, root)}`;
  }
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return '(strings)';
  if (type === 'number') return '(heap numbers)';
  if (type === 'object' && !name.startsWith('system /')) return name;
  if (type === 'native') return `native ${name}`;
  return null;
}

function anonymous(s: Snapshot, i: number): string {
  const name = s.name(i);
  return `${s.type(i)}${name ? ` ${name}` : ''}`;
}

/** file:line of a closure (its script through shared → script_or_debug_info), relative to `root`. */
function where(s: Snapshot, closure: number, root: string): string {
  let script = '?';
  for (const [, edge, shared] of s.edges(closure)) {
    if (edge !== 'shared') continue;
    for (const [, e, to] of s.edges(shared)) if (e === 'script_or_debug_info') script = s.name(to);
  }
  if (script.startsWith('file://')) script = relative(root, fileURLToPath(script));
  script = script.replace(/^.*node_modules\//, '');
  if (script === '?') return '(builtin)';
  const line = s.line(closure);
  return line === undefined ? script : `${script}:${line + 1}`;
}
