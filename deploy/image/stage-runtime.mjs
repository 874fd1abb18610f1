#!/usr/bin/env node
/**
 * Lays out, for the container image, what `podtun` needs at run time and nothing else. Run by
 * deploy/Containerfile's build stage; the runtime stage copies the result to /opt/podtun.
 *
 *   node stage-runtime.mjs stage --from /src --to /stage --manifest /stage.modules
 *        (after `npm run build`, before `npm prune`: it parses with the typescript devDependency)
 *   node stage-runtime.mjs check --dir /stage --manifest /stage.modules
 *        (with the production node_modules reachable from DIR: every staged module imports, the
 *        CLI prints its version, the CNI executables answer VERSION)
 *
 * Stage, in order:
 *  1. walk the module graph from the package's `bin` entries (bin/podtun.js): static imports,
 *     re-exports and `import('…')` with a literal specifier, found by TypeScript's own scanner
 *     (ts.preProcessFile), so the list follows the code as folders move;
 *  2. leave out test-only modules (under test/ or dist/test/, or *.test.js) and, transitively,
 *     every module that imports one statically: such a module can only be reached through a
 *     dynamic import, whose failure the CLI reports. An entry that needs a test-only module fails
 *     the stage;
 *  3. copy the kept modules (no source maps), package.json, the assets a compiled module reads
 *     beside itself (web files in the module's source folder, e.g. the dashboard page), the native
 *     addon (build/Release/*.node, where node-gyp-build looks) and the CNI executables of
 *     dist/cni-bin (hard links kept: one file, several names);
 *  4. print what was kept, what was left out and why, and the packages imported.
 * Bare imports are not copied: node_modules comes from `npm prune --omit=dev`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, writeFile } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** Files beside a module's source that the compiled module may read at run time. */
const ASSET_EXTENSIONS = new Set(['.html', '.css', '.js', '.json', '.svg', '.png', '.ico', '.woff2']);
const CHECK_TIMEOUT_MS = 30_000;

class StageError extends Error {}

function fail(message) {
  throw new StageError(message);
}

function isTestOnly(rel) {
  const parts = rel.split(sep);
  return parts[0] === 'test' || (parts[0] === 'dist' && parts[1] === 'test') || rel.endsWith('.test.js');
}

/** Relative and bare specifiers a module imports (node: and other builtins dropped). */
function importsOf(ts, file) {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const paths = [];
  const bare = [];
  for (const { fileName } of importedFiles) {
    if (fileName.startsWith('.') || fileName.startsWith('/')) paths.push(fileName);
    else if (!isBuiltin(fileName)) bare.push(fileName);
  }
  return { paths, bare };
}

/** The package a bare specifier names: `@scope/name` or `name`. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

async function stage(fromArg, toArg, manifestArg) {
  const from = resolve(fromArg);
  const to = resolve(toArg);
  const require = createRequire(join(from, 'package.json'));
  const ts = require('typescript');
  const pkg = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
  const entries = binEntries(pkg).map((p) => resolve(from, p));
  if (entries.length === 0) fail(`${from}/package.json has no bin entry to start from`);

  // 1. The graph: module -> { static: Set, dynamic: Set }, plus the packages each imports.
  const graph = new Map();
  const packages = new Set();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop();
    if (graph.has(file)) continue;
    if (!existsSync(file)) fail(`${relative(from, file)} does not exist (run \`npm run build\` first)`);
    const node = { static: new Set(), dynamic: new Set() };
    graph.set(file, node);
    if (isTestOnly(relative(from, file))) continue;
    const text = readFileSync(file, 'utf8');
    const { paths: rels, bare } = importsOf(ts, file);
    for (const spec of bare) packages.add(packageName(spec));
    for (const spec of rels) {
      const target = resolve(dirname(file), spec);
      if (!existsSync(target)) fail(`${relative(from, file)} imports ${spec}, which does not exist`);
      // preProcessFile does not say which kind an import is: a dynamic one is written import('…').
      const dynamic = new RegExp(`import\\(\\s*['"]${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]`).test(text);
      (dynamic ? node.dynamic : node.static).add(target);
      pending.push(target);
    }
  }

  // 2. Left out: test-only modules, then whatever needs one statically, until nothing changes.
  const leftOut = new Map();
  for (const file of graph.keys()) if (isTestOnly(relative(from, file))) leftOut.set(file, 'test-only');
  for (let changed = true, round = 0; changed && round <= graph.size; round++) {
    changed = false;
    for (const [file, node] of graph) {
      if (leftOut.has(file)) continue;
      const needed = [...node.static].find((dep) => leftOut.has(dep));
      if (needed !== undefined) {
        leftOut.set(file, `imports ${relative(from, needed)}`);
        changed = true;
      }
    }
  }
  for (const entry of entries) {
    if (leftOut.has(entry)) fail(`${relative(from, entry)} needs a test-only module (${leftOut.get(entry)})`);
  }
  const kept = [...graph.keys()].filter((file) => !leftOut.has(file)).sort();
  // Only what a kept module reaches: a test-only module imported by another left-out one is noise.
  const reachedFromKept = new Set(kept.flatMap((file) => [...graph.get(file).static, ...graph.get(file).dynamic]));

  // 3. Copy.
  let bytes = 0;
  const copy = async (source, target) => {
    await mkdir(dirname(target), { recursive: true });
    await copyFile(source, target);
    bytes += statSync(target).size;
  };
  for (const file of kept) await copy(file, join(to, relative(from, file)));
  // The modules `check` imports: the compiled ones, not the entries (they run) nor the assets.
  const manifest = kept.filter((file) => !entries.includes(file)).map((file) => relative(from, file));
  await writeFile(resolve(manifestArg), `${manifest.join('\n')}\n`);
  await copy(join(from, 'package.json'), join(to, 'package.json'));

  const assets = [];
  const moduleDirs = new Set(kept.map((file) => relative(from, dirname(file))).filter((dir) => dir.split(sep)[0] === 'dist'));
  for (const distDir of moduleDirs) {
    const sourceDir = join(from, ...distDir.split(sep).slice(1));
    if (!existsSync(sourceDir)) continue;
    for (const entry of readdirSync(sourceDir, { withFileTypes: true })) {
      if (!entry.isFile() || !ASSET_EXTENSIONS.has(extname(entry.name)) || isTestOnly(entry.name)) continue;
      await copy(join(sourceDir, entry.name), join(to, distDir, entry.name));
      assets.push(join(distDir, entry.name));
    }
  }

  const releaseDir = join(from, 'build', 'Release');
  const addons = existsSync(releaseDir) ? readdirSync(releaseDir).filter((name) => name.endsWith('.node')) : [];
  if (addons.length === 0) fail(`no native addon in ${releaseDir} (npm ci builds it)`);
  for (const name of addons) await copy(join(releaseDir, name), join(to, 'build', 'Release', name));

  const cniDir = join(from, 'dist', 'cni-bin');
  const cniNames = existsSync(cniDir)
    ? readdirSync(cniDir, { withFileTypes: true })
        .filter((e) => e.isFile() && !e.name.startsWith('.') && !e.name.endsWith('.tmp') && (statSync(join(cniDir, e.name)).mode & 0o111) !== 0)
        .map((e) => e.name)
        .sort()
    : [];
  if (cniNames.length === 0) fail(`no CNI executables in ${cniDir} (npm run build makes them)`);
  const firstByInode = new Map();
  for (const name of cniNames) {
    const source = join(cniDir, name);
    const target = join(to, 'dist', 'cni-bin', name);
    const { ino } = statSync(source);
    const twin = firstByInode.get(ino);
    if (twin === undefined) {
      await copy(source, target);
      firstByInode.set(ino, target);
    } else {
      await link(twin, target);
    }
  }

  // 4. Report.
  const byFolder = new Map();
  for (const file of kept) {
    const folder = relative(from, file).split(sep).slice(0, 2).join('/');
    byFolder.set(folder, (byFolder.get(folder) ?? 0) + 1);
  }
  console.log(`stage: ${kept.length} modules from ${entries.map((e) => relative(from, e)).join(', ')} -> ${to}`);
  console.log(`  modules: ${[...byFolder].map(([folder, n]) => `${folder} ${n}`).join(', ')}`);
  for (const [file, why] of leftOut) {
    if (reachedFromKept.has(file)) console.log(`  left out: ${relative(from, file)} (${why})`);
  }
  console.log(`  assets: ${assets.length > 0 ? assets.join(', ') : 'none'}`);
  console.log(`  native addon: ${addons.map((name) => `build/Release/${name}`).join(', ')}`);
  console.log(`  CNI executables: dist/cni-bin/{${cniNames.join(',')}} (${firstByInode.size} file${firstByInode.size === 1 ? '' : 's'})`);
  console.log(`  packages imported: ${[...packages].sort().join(' ')}`);
  console.log(`  ${(bytes / 1e6).toFixed(1)} MB staged`);
}

/** Every staged module imports; the CLI prints its version; each CNI executable answers VERSION. */
async function check(dirArg, manifestArg) {
  const dir = resolve(dirArg);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const modules = readFileSync(resolve(manifestArg), 'utf8').split('\n').filter((line) => line !== '');
  for (const rel of modules) {
    try {
      await import(pathToFileURL(join(dir, rel)).href);
    } catch (err) {
      fail(`${rel} does not import in the image layout: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const entry of binEntries(pkg)) {
    const out = execFileSync(process.execPath, [join(dir, entry), '--version'], { encoding: 'utf8', timeout: CHECK_TIMEOUT_MS });
    if (!out.includes(pkg.version)) fail(`${entry} --version printed ${JSON.stringify(out)}, not the version ${pkg.version}`);
  }
  const cniDir = join(dir, 'dist', 'cni-bin');
  for (const name of readdirSync(cniDir).sort()) {
    const out = execFileSync(join(cniDir, name), [], { env: { CNI_COMMAND: 'VERSION' }, input: '', encoding: 'utf8', timeout: CHECK_TIMEOUT_MS });
    if (!Array.isArray(JSON.parse(out).supportedVersions)) fail(`dist/cni-bin/${name}: VERSION printed ${out}`);
  }
  console.log(`check: ${modules.length} modules import, the CLI and the CNI executables start (${dir})`);
}

/** The package's `bin` paths (a string is the one command named after the package). */
function binEntries(pkg) {
  return typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: { from: { type: 'string', default: '.' }, to: { type: 'string' }, dir: { type: 'string' }, manifest: { type: 'string' } },
    strict: true,
  });
  const { from, to, dir, manifest } = values;
  if (command === 'stage' && to !== undefined && manifest !== undefined) return stage(from, to, manifest);
  if (command === 'check' && dir !== undefined && manifest !== undefined) return check(dir, manifest);
  fail('usage: stage-runtime.mjs stage --from DIR --to DIR --manifest FILE | check --dir DIR --manifest FILE');
}

main().catch((err) => {
  console.error(`stage-runtime: ${err instanceof StageError ? err.message : (err?.stack ?? err)}`);
  process.exitCode = 1;
});
