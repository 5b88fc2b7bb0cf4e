/**
 * No import cycles (issue 15): between files, and between folders. A folder is the first directory
 * under src/ (src/slab, src/kernel, ...) or workers/; a file directly in src/ (the dispatcher, the
 * request, the errors) counts as its own unit, so that "everything imports errors.ts" and "the
 * dispatcher imports every kind" are not a cycle. Type-only imports count too: a cycle in the types
 * is a cycle in the design. The graph is read from the sources (static `import`/`export ... from`
 * and `import('...')` types), so the test needs no build and no dependency.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from './helpers.js';

function sources(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm;

/** file (relative to the root) -> relative files it imports. */
function importGraph(): Map<string, Set<string>> {
  const files = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'workers'))];
  const graph = new Map<string, Set<string>>();
  for (const f of files) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(SPEC)) {
      const target = resolve(dirname(f), m[1]).replace(/\.js$/, '.ts');
      deps.add(relative(ROOT, target));
    }
    graph.set(relative(ROOT, f), deps);
  }
  return graph;
}

function unitOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'workers') return 'workers/';
  return parts.length > 2 ? `src/${parts[1]}/` : file;
}

/** Every cycle found by a depth-first search, each as the path that closes it. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of [...(graph.get(n) ?? [])].sort()) {
      if (d === n) continue;
      const s = state.get(d);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('the import graph of src/ and workers/', () => {
  const files = importGraph();

  it('reads every import (the parser sees the graph it checks)', () => {
    expect(files.size).toBeGreaterThan(40);
    for (const [f, deps] of files) for (const d of deps) expect(files.has(d), `${f} imports ${d}, which is not a source file`).toBe(true);
    expect(files.get('workers/scan-worker.ts')?.size).toBeGreaterThan(0);
  });

  it('has no cycle between files', () => {
    expect(cycles(files).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const folders = new Map<string, Set<string>>();
    for (const [f, deps] of files) {
      const u = unitOf(f);
      const set = folders.get(u) ?? new Set<string>();
      for (const d of deps) if (unitOf(d) !== u) set.add(unitOf(d));
      folders.set(u, set);
    }
    expect(cycles(folders).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    const g = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]]);
    expect(cycles(g).map((c) => c.join(' -> '))).toEqual(['a -> b -> c -> a']);
  });
});
