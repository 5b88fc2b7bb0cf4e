#!/usr/bin/env node
/**
 * `npm run package`: dist/sysak-linux-<arch>, one file that runs `sysak memleak ...` on a host without
 * Node. Node's single executable application support on the Node binary running this script:
 *   1. esbuild bundles the workers (piscina's own worker and scan-worker) and the CLI to CommonJS (a
 *      single executable runs one CommonJS script); the worker sources, version and commit go into the
 *      CLI bundle through `define` (src/ship/build-info.ts); the wasm is already bytes inside modules.
 *   2. `node --experimental-sea-config` turns the bundle into a blob; postject injects it into a copy of
 *      that node binary.
 * Nothing is downloaded. Options: --out FILE (default dist/sysak-linux-<arch>), --quiet, --keep (keep the
 * bundle, blob and SEA config in the printed work directory).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const outArg = args.indexOf('--out');
const OUT = outArg >= 0 ? resolve(args[outArg + 1]) : join(ROOT, 'dist', `sysak-linux-${process.arch}`);
const keep = args.includes('--keep');
// The fuse string Node's binary carries for single executable applications (Node docs, "postject").
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const t0 = performance.now();
const log = (s) => quiet || process.stderr.write(`package: ${s}\n`);

function gitCommit() {
  try {
    const git = (...a) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return git('rev-parse', '--short=12', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') ? '-dirty' : '');
  } catch {
    return 'unknown';
  }
}

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', write: false, logLevel: 'warning', legalComments: 'none' };

/** One bundle as text. */
async function bundle(opts) {
  const r = await build({ ...common, ...opts });
  return r.outputFiles[0].text;
}

/**
 * piscina starts its own worker from `resolve(__dirname, 'worker.js')`; inside a single executable
 * __dirname is the executable's directory, so that one expression is pointed at the embedded copy.
 * The build fails if piscina changes it (a silent miss would only show when workers start).
 */
const PISCINA_WORKER_EXPR = "(0, node_path_1.resolve)(__dirname, 'worker.js')";
const embeddedPiscinaWorker = {
  name: 'embedded-piscina-worker',
  setup(b) {
    b.onLoad({ filter: /[\\/]piscina[\\/]dist[\\/]index\.js$/ }, (a) => {
      const src = readFileSync(a.path, 'utf8');
      if (!src.includes(PISCINA_WORKER_EXPR)) throw new Error(`${a.path}: piscina no longer starts its worker with ${PISCINA_WORKER_EXPR}; update scripts/package.mjs`);
      const files = JSON.stringify(join(ROOT, 'src', 'ship', 'worker-files.ts'));
      return { contents: src.replace(PISCINA_WORKER_EXPR, `require(${files}).embeddedWorkerFile('piscina-worker')`), loader: 'js' };
    });
  },
};

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const WORK = mkdtempSync(join(tmpdir(), 'sysak-package-'));
process.on('exit', () => (keep ? log(`kept ${WORK}`) : rmSync(WORK, { recursive: true, force: true })));

const workers = {
  // @napi-rs/nice is piscina's optional niceness helper (a native addon): not shipped, piscina goes without.
  'piscina-worker': await bundle({ entryPoints: [join(dirname(require.resolve('piscina')), 'worker.js')], external: ['@napi-rs/nice'] }),
  'scan-worker': await bundle({ entryPoints: [join(ROOT, 'workers', 'scan-worker.ts')] }),
};
const info = { version: pkg.version, commit: gitCommit(), workers };
const main = await bundle({
  entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')],
  external: ['@napi-rs/nice'],
  plugins: [embeddedPiscinaWorker],
  define: { __SYSAK_BUILD__: JSON.stringify(info), 'import.meta.url': '__sysak_import_meta_url' },
  // import.meta does not exist in CommonJS: the bundle's own file URL stands in (the executable's path).
  banner: { js: 'var __sysak_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
});
const mainFile = join(WORK, 'sysak.cjs');
writeFileSync(mainFile, main);
log(`bundled ${(main.length / 1024).toFixed(0)} KiB (workers ${Object.entries(workers).map(([k, v]) => `${k} ${(v.length / 1024).toFixed(0)} KiB`).join(', ')}), commit ${info.commit}`);

const blob = join(WORK, 'sysak.blob');
const config = join(WORK, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main: mainFile, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: quiet ? 'ignore' : ['ignore', 'inherit', 'inherit'] });

mkdirSync(dirname(OUT), { recursive: true });
rmSync(OUT, { force: true });
copyFileSync(process.execPath, OUT);
chmodSync(OUT, 0o755);
// postject's LIEF prints "Can't find string offset for section name" for Node's ELF notes (harmless);
// its output is shown only when it fails.
const postject = spawnSync(process.execPath, [join(dirname(require.resolve('postject')), 'cli.js'), OUT, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { encoding: 'utf8' });
if (postject.status !== 0) {
  process.stderr.write(postject.stdout + postject.stderr);
  rmSync(OUT, { force: true });
  throw new Error(`postject failed (exit ${postject.status})`);
}
log(`wrote ${OUT}: ${(statSync(OUT).size / 1048576).toFixed(1)} MiB, node ${process.version}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
