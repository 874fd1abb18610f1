/**
 * The layout is the architecture: no import may close a cycle between top-level folders, and no
 * production file may import test code (test/, *.test.ts). Reads every relative import of the
 * repository's TypeScript and JavaScript, static and dynamic.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', 'build', '.git', 'test-artifacts']);
const IMPORT_RE = /(?:import|export)[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mts|mjs|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const folderOf = (path: string): string => relative(root, path).split(sep)[0] ?? '';
const isTestCode = (path: string): boolean => folderOf(path) === 'test' || /\.test\.[mc]?[jt]s$/.test(path);

/** Folder -> folders it imports, with one example import each. */
function folderGraph(): { edges: Map<string, Map<string, string>>; testImports: string[] } {
  const edges = new Map<string, Map<string, string>>();
  const testImports: string[] = [];
  for (const file of sources(root)) {
    if (isTestCode(file)) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? '';
      const target = resolve(dirname(file), spec);
      if (isTestCode(target.replace(/\.js$/, '.ts'))) testImports.push(`${relative(root, file)} imports ${spec}`);
      const [from, to] = [folderOf(file), folderOf(target)];
      if (from === to || to.startsWith('..') || to === 'dist') continue;
      const out = edges.get(from) ?? new Map<string, string>();
      out.set(to, `${relative(root, file)} -> ${spec}`);
      edges.set(from, out);
    }
  }
  return { edges, testImports };
}

function reaches(edges: Map<string, Map<string, string>>, from: string, to: string, seen = new Set<string>()): boolean {
  if (from === to) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  return [...(edges.get(from)?.keys() ?? [])].some((next) => reaches(edges, next, to, seen));
}

describe('the folder layout', () => {
  const { edges, testImports } = folderGraph();

  it('has no import cycle between top-level folders', () => {
    const cycles: string[] = [];
    for (const [from, out] of edges) for (const [to, why] of out) if (reaches(edges, to, from)) cycles.push(`${from} -> ${to} (${why})`);
    expect(cycles).toEqual([]);
  });

  it('has no production import of test code', () => {
    expect(testImports).toEqual([]);
  });

  it('keeps core/ free of the folders that build on it', () => {
    expect([...(edges.get('core')?.keys() ?? [])]).toEqual([]);
  });

  it('sees the imports it judges (a check that reads nothing could not fail)', () => {
    expect(edges.get('router')?.has('core')).toBe(true);
    expect(edges.get('node-bootstrap')?.has('ipam')).toBe(true);
    expect(edges.get('lab')?.has('node-bootstrap')).toBe(true);
  });
});
