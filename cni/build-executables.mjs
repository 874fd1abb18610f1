#!/usr/bin/env node
/**
 * Builds the Node-less CNI executables `dist/cni-bin/podtun` and `dist/cni-bin/podtun-ipam`:
 * one Node single-executable application (SEA) under two hard-linked names. kubelet runs CNI
 * executables on the host, where Node is often absent; the SEA carries its own runtime and needs
 * only the C libraries every Linux host has. The entry picks the plugin from its own file name,
 * so the names must be hard links or copies, never symlinks (a symlink's execPath is its target).
 *
 * Run by `npm run build` after tsc. Flow:
 *  1. bundle cni/cni-entry.ts with esbuild into ONE CommonJS script (a Node 20
 *     SEA main may `require` builtins only), in memory, and check that it requires nothing else;
 *  2. stamp = sha256 of the bundle, this script, the Node version and the SEA config; when
 *     dist/cni-bin/.work/stamp holds the same stamp and both outputs exist, stop ("up to date").
 *     A content stamp rather than mtimes: esbuild takes milliseconds, and a touched but
 *     unchanged source must not cost a 5-second rebuild inside every `npm test`;
 *  3. `node --experimental-sea-config` -> the preparation blob (with a V8 code cache);
 *  4. copy this Node binary, strip its symbols when `strip` is on PATH (-12 MB; optional),
 *     inject the blob with postject's JS API (WASM, no tools needed) and flip the SEA fuse;
 *  5. mode 0755, hard-link the staged file as podtun-ipam.tmp, rename both into place (a running
 *     old executable keeps its inode); write the stamp last.
 *
 * Options: --entry FILE (another entry, for experiments), --out-dir DIR, --force (rebuild).
 * Linux only (elsewhere it prints that it skipped); needs the devDependencies esbuild and
 * postject; `strip` (binutils) is optional.
 * Prints one line. Exits non-zero with a message naming what failed, e.g. a Node binary built
 * without SEA support.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const SEA_RESOURCE = 'NODE_SEA_BLOB';
const NAMES = ['podtun', 'podtun-ipam'];
const EXEC_MODE = 0o755;

const scriptPath = fileURLToPath(import.meta.url);
const root = resolve(dirname(scriptPath), '..');
const require = createRequire(import.meta.url);

const { values: args } = parseArgs({
  options: {
    entry: { type: 'string', default: join(root, 'cni/cni-entry.ts') },
    'out-dir': { type: 'string', default: join(root, 'dist/cni-bin') },
    force: { type: 'boolean', default: false },
  },
});
const entry = resolve(args.entry);
const outDir = resolve(args['out-dir']);
const workDir = join(outDir, '.work');

/**
 * The SEA config. Startup of `CNI_COMMAND=VERSION podtun-ipam`, median of 60 on the 2-core dev
 * machine (noisy, under load): no code cache 50 ms, code cache 46 ms, minified 48 ms, minified
 * with code cache 52 ms; plain `node -e 0` 31 ms. So: useCodeCache (V8 code for the main script
 * compiled at build time), no minifying (readable stack traces, no measurable gain).
 * useSnapshot is not used: it measured ~9 ms faster on a 350 KiB test bundle, but the entry runs
 * at load, and a snapshot needs the entry restructured around v8.startupSnapshot
 * (setDeserializeMainFunction) and grows the binary by ~5 MB.
 */
const seaConfig = {
  main: join(workDir, 'main.cjs'),
  output: join(workDir, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
};

class BuildError extends Error {}

async function main() {
  const started = performance.now();
  if (process.platform !== 'linux') {
    // CNI and podtun are Linux-only; elsewhere (a laptop running the type checks) there is nothing to build.
    console.log(`cni executables: skipped (Linux only, this is ${process.platform})`);
    return;
  }
  if (!existsSync(entry)) throw new BuildError(`entry ${show(entry)} does not exist`);
  const bundle = await bundleEntry();
  const stamp = createHash('sha256')
    .update(bundle)
    .update(readFileSync(scriptPath))
    .update(process.version)
    .update(process.execPath)
    .update(JSON.stringify(seaConfig))
    .digest('hex');
  const outputs = NAMES.map((name) => join(outDir, name));
  if (!args.force && upToDate(stamp, outputs)) {
    console.log(`cni executables: up to date (${show(outDir)}/{${NAMES.join(',')}})`);
    return;
  }

  checkSeaFuse(await readFile(process.execPath));
  await mkdir(workDir, { recursive: true });
  const stampPath = join(workDir, 'stamp');
  await rm(stampPath, { force: true });
  await writeFile(seaConfig.main, bundle);
  const configPath = join(workDir, 'sea-config.json');
  await writeFile(configPath, JSON.stringify(seaConfig, null, 2));
  run(process.execPath, ['--experimental-sea-config', configPath], 'node --experimental-sea-config');

  const staged = join(workDir, 'podtun.tmp');
  await rm(staged, { force: true });
  await copyFile(process.execPath, staged);
  await chmod(staged, 0o700);
  const stripped = stripSymbols(staged);
  await inject(staged, await readFile(seaConfig.output));
  await chmod(staged, EXEC_MODE);

  // One file, two names: each renamed over its final name (a runner of the old file keeps its inode).
  const [first, ...others] = outputs;
  for (const other of others) {
    const stagedOther = `${other}.tmp`;
    await rm(stagedOther, { force: true });
    await link(staged, stagedOther);
    await rename(stagedOther, other);
  }
  await rename(staged, first);
  await writeFile(stampPath, `${stamp}\n`);

  const sizeMb = (statSync(first).size / 1e6).toFixed(1);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `cni executables: built ${show(outDir)}/{${NAMES.join(',')}} (one ${sizeMb} MB SEA of Node ${process.version}` +
      `${stripped ? ', stripped' : ', not stripped: no strip on PATH'}, bundle ${(bundle.length / 1024).toFixed(0)} KiB, ${seconds} s)`,
  );
}

/** A Node binary without the fuse (or one already injected) cannot become a SEA. */
function checkSeaFuse(binary) {
  const at = binary.indexOf(`${SEA_FUSE}:`);
  if (at < 0) {
    throw new BuildError(
      `${process.execPath} (Node ${process.version}) has no SEA fuse ${SEA_FUSE}: it was built without ` +
        'single-executable support; build with an official Node 20 binary (nodejs.org or Debian/NodeSource packages)',
    );
  }
  if (binary[at + SEA_FUSE.length + 1] !== 0x30) {
    throw new BuildError(`${process.execPath} is already a single-executable application (its SEA fuse is set); run the build with a plain node`);
  }
}

async function bundleEntry() {
  const esbuild = await import('esbuild').catch((err) => {
    throw new BuildError(`cannot load esbuild (a devDependency; run \`npm ci\`): ${err.message}`);
  });
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
    // Readable stack traces from a CNI failure beat the few ms minifying saved (measured).
    minify: false,
    outfile: seaConfig.main,
  }).catch((err) => {
    throw new BuildError(`esbuild: ${(err.errors ?? [err]).map(describeMessage).join('; ')}`);
  });
  // A warning here is a runtime bug in a SEA (import.meta is empty in CJS, a dynamic require
  // cannot be resolved): refuse it rather than ship it.
  if (result.warnings.length > 0) throw new BuildError(`esbuild: ${result.warnings.map(describeMessage).join('; ')}`);
  const nonBuiltin = new Set();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imp of output.imports) if (imp.external && !isBuiltin(imp.path)) nonBuiltin.add(imp.path);
  }
  if (nonBuiltin.size > 0) {
    throw new BuildError(`the bundle requires non-builtin modules ${[...nonBuiltin].join(', ')}: a Node 20 SEA main can require builtins only`);
  }
  const file = result.outputFiles[0];
  if (file === undefined) throw new BuildError('esbuild produced no output');
  return Buffer.from(file.contents);
}

function describeMessage(message) {
  const at = message.location ? `${message.location.file}:${message.location.line}: ` : '';
  return `${at}${message.text ?? message.message}`;
}

/** A path for the one-line report: relative to the package when inside it. */
function show(path) {
  const rel = relative(root, path);
  return rel.startsWith('..') ? path : rel;
}

function upToDate(stamp, outputs) {
  try {
    if (readFileSync(join(workDir, 'stamp'), 'utf8').trim() !== stamp) return false;
    const stats = outputs.map((path) => statSync(path));
    return stats.every((s) => s.ino === stats[0].ino && s.dev === stats[0].dev && (s.mode & 0o777) === EXEC_MODE);
  } catch {
    return false;
  }
}

/** strip --strip-all keeps what a SEA needs (.dynsym and the PT_NOTE holding the blob). */
function stripSymbols(path) {
  try {
    execFileSync('strip', ['--strip-all', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    return true;
  } catch (err) {
    if (err.code === 'ENOENT') return false;
    throw new BuildError(`strip --strip-all ${path} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

/** postject writes LIEF's harmless "Can't find string offset for section name" notes via console.warn. */
async function inject(path, blob) {
  let postject;
  try {
    postject = require('postject');
  } catch (err) {
    throw new BuildError(`cannot load postject (a devDependency; run \`npm ci\`): ${err.message}`);
  }
  const warn = console.warn;
  console.warn = (...parts) => {
    if (!/^warning: Can't find string offset for section name/.test(String(parts[0]))) warn(...parts);
  };
  try {
    await postject.inject(path, SEA_RESOURCE, blob, { sentinelFuse: SEA_FUSE });
  } catch (err) {
    throw new BuildError(`postject could not inject the SEA blob into ${path}: ${err.message}`);
  } finally {
    console.warn = warn;
  }
}

function run(file, argv, what) {
  try {
    execFileSync(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new BuildError(`${what} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

main().catch((err) => {
  console.error(`cni executables: build failed: ${err instanceof BuildError ? err.message : err.stack ?? err}`);
  process.exitCode = 1;
});
