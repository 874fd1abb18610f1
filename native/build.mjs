// Builds the native addon (build/Release/podtun.node) at `npm ci`: checks the tools first so a
// missing one is named in one line instead of a page of node-gyp output.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const HINT = 'install it with: apt-get install build-essential python3';

function fail(reason) {
  console.error(`podtun: cannot build the native addon: ${reason}`);
  process.exit(1);
}

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v "${name}"`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const cc = [process.env.CC, 'cc', 'gcc'].find((c) => c !== undefined && c !== '' && which(c) !== undefined);
if (cc === undefined) fail(`no C compiler found; ${HINT}`);
if (which('make') === undefined) fail(`no make found; ${HINT}`);
if (which('python3') === undefined && process.env.PYTHON === undefined) fail(`no python3 found; ${HINT}`);

let nodeGyp;
try {
  nodeGyp = join(dirname(createRequire(import.meta.url).resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');
} catch {
  fail('the node-gyp package is missing; run npm ci again');
}

// Headers: npm's nodedir when set (npm config nodedir=/usr here), else those installed with this
// Node when present (a distribution's nodejs package), else node-gyp downloads them.
const installedPrefix = dirname(dirname(process.execPath));
const nodedir =
  process.env.npm_config_nodedir ||
  (existsSync(join(installedPrefix, 'include', 'node', 'common.gypi')) ? installedPrefix : undefined);
const args = [nodeGyp, 'rebuild'];
if (nodedir !== undefined) args.push(`--nodedir=${nodedir}`);

// The addon is plain C: link with the C compiler so no C++ toolchain is needed.
const env = { ...process.env, CC: process.env.CC ?? cc, LINK: process.env.LINK ?? cc };
const r = spawnSync(process.execPath, args, { cwd: packageRoot, stdio: 'inherit', env });
if (r.status !== 0) fail(`node-gyp exited with ${r.status ?? r.signal}; see its output above`);
