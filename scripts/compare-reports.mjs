#!/usr/bin/env node
/**
 * The acceptance check of a behaviour-preserving change (issue 15): runs the built CLI on every
 * sample (samples/*) and every recording (../shared/recordings/*, ../rec/*) in every output format
 * and a few forced analyses, strips only the timings (elapsedMs, the JSON's timings and the "N ms" of the text report),
 * and compares the result byte for byte with a baseline.
 *
 *   node scripts/compare-reports.mjs --save [DIR]      record a baseline from the current dist/
 *   node scripts/compare-reports.mjs [DIR]             compare dist/ with the baseline in DIR
 *   node scripts/compare-reports.mjs --base REF        build REF (git) in a temporary directory,
 *                                                      record its baseline (in DIR's default), then
 *                                                      compare dist/ with it
 *
 * DIR defaults to .compare-baseline/ in the checkout (git-ignored). Build first (`npm run build`).
 * --filter REGEX (before the rest) keeps only the outputs whose name matches, e.g. `--filter ^samples_`
 * for a quick pass over the bundled samples.
 * Exit status: 0 identical, 1 differences (listed, with the first differing line), 2 usage.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
// Extracts are written to fixed paths: the report names the file, so baseline and check must agree.
const EXTRACT_DIR = join(tmpdir(), 'sysak-compare-extract');

function dirsUnder(parent) {
  if (!existsSync(parent)) return [];
  return readdirSync(parent)
    .map((n) => join(parent, n))
    .filter((p) => statSync(p).isDirectory())
    .sort();
}

function first(dir, names) {
  for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  return null;
}

/** Every invocation compared: [name, argv]. Names are stable file names for the baseline. */
function cases() {
  const dirs = [...dirsUnder(join(ROOT, 'samples')), ...dirsUnder(resolve(ROOT, '../shared/recordings')), ...dirsUnder(resolve(ROOT, '../rec'))];
  const out = [];
  for (const d of dirs) {
    const tag = (d.startsWith(ROOT) ? d.slice(ROOT.length) : d.replace(resolve(ROOT, '..') + '/', '')).replace(/[/]/g, '_');
    const add = (what, args) => out.push([`${tag}__${what}`, args]);
    add('from.json', ['memleak', '--from', d, '--json']);
    add('from.txt', ['memleak', '--from', d]);
    add('from.sysak', ['memleak', '--from', d, '--format', 'sysak']);
    for (const t of ['slab', 'vmalloc', 'page']) {
      add(`from-${t}.json`, ['memleak', '--from', d, '-t', t, '--json']);
      add(`from-${t}.txt`, ['memleak', '--from', d, '-t', t]);
    }
    const vmcore = first(d, ['vmcore.kdump', 'vmcore.extract.gz', 'vmcore.elf', 'vmcore']);
    const trace = first(d, ['guest/trace.txt']);
    const kallsyms = first(d, ['guest/kallsyms.txt']);
    if (vmcore) {
      add('vmcore.json', ['memleak', '--vmcore', vmcore, '--json']);
      add('vmcore.txt', ['memleak', '--vmcore', vmcore]);
      for (const t of ['vmalloc', 'page']) add(`vmcore-${t}.json`, ['memleak', '--vmcore', vmcore, '-t', t, '--json']);
      if (trace) {
        const x = join(EXTRACT_DIR, `${tag}.core`);
        add('extract', ['memleak', 'extract', '--vmcore', vmcore, '--trace', trace, '-o', x, '#extract', x]);
        add('extract-replay.json', ['memleak', '--vmcore', x, '--trace', trace, '--json']);
      }
    }
    const kmem = first(d, ['crash/kmem_S_kmalloc-64.txt']);
    for (const rd of ['crash/rd64_pages.txt', 'crash/rdS_pages.txt']) {
      const f = first(d, [rd]);
      if (!f) continue;
      const r = rd.split('/')[1].replace('.txt', '');
      const extra = [...(kallsyms ? ['--kallsyms', kallsyms] : []), ...(trace ? ['--trace', trace] : [])];
      if (kmem) add(`${r}-kmem.json`, ['memleak', '--rd', f, '--kmem', kmem, ...extra, '--json']);
      if (kmem) add(`${r}-kmem.sysak`, ['memleak', '--rd', f, '--kmem', kmem, ...extra, '--format', 'sysak']);
      const slabinfo = first(d, ['guest/slabinfo.after']);
      if (slabinfo) add(`${r}-slabinfo.json`, ['memleak', '--rd', f, '--slabinfo', slabinfo, '--cache', 'kmalloc-64', ...extra, '--json']);
    }
  }
  return out;
}

/** Only timings are volatile. */
function normalize(name, stdout) {
  if (name.endsWith('.json')) {
    try {
      return JSON.stringify(JSON.parse(stdout), (k, v) => (k === 'elapsedMs' || k === 'timings' ? undefined : v), 2) + '\n';
    } catch {
      return stdout;
    }
  }
  return stdout.replace(/\b\d+ ms\b/g, '<N> ms');
}

function run(cli, args) {
  return new Promise((res) => {
    const hashOf = args.indexOf('#extract');
    const argv = hashOf >= 0 ? args.slice(0, hashOf) : args;
    const p = spawn(process.execPath, [cli, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const o = [];
    const e = [];
    p.stdout.on('data', (b) => o.push(b));
    p.stderr.on('data', (b) => e.push(b));
    p.on('close', (code, signal) => {
      let extra = '';
      if (hashOf >= 0 && existsSync(args[hashOf + 1])) extra = `sha256 ${createHash('sha256').update(readFileSync(args[hashOf + 1])).digest('hex')}\n`;
      res({ code: code ?? signal, stdout: Buffer.concat(o).toString('utf8') + extra, stderr: Buffer.concat(e).toString('utf8') });
    });
  });
}

async function collect(cli) {
  mkdirSync(EXTRACT_DIR, { recursive: true });
  const all = cases().filter(([name]) => !FILTER || FILTER.test(name));
  const results = new Map();
  // Extracts must exist before their replay: run each directory's cases in order, two directories at a time.
  const byTag = new Map();
  for (const c of all) {
    const tag = c[0].split('__')[0];
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push(c);
  }
  const queues = [...byTag.values()];
  async function worker() {
    for (let q = queues.shift(); q; q = queues.shift()) {
      for (const [name, args] of q) {
        const r = await run(cli, args);
        results.set(name, `exit ${r.code}\n--- stderr\n${r.stderr}--- stdout\n${normalize(name, r.stdout)}`);
      }
    }
  }
  await Promise.all([worker(), worker()]);
  return new Map([...results].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

function save(dir, results) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [n, t] of results) writeFileSync(join(dir, n), t);
}

function compare(dir, results) {
  const names = new Set([...readdirSync(dir).filter((n) => !FILTER || FILTER.test(n)), ...results.keys()]);
  let bad = 0;
  let added = 0;
  for (const n of [...names].sort()) {
    const want = existsSync(join(dir, n)) ? readFileSync(join(dir, n), 'utf8') : null;
    const got = results.get(n) ?? null;
    if (want === got) continue;
    if (want === null) {
      // A recording that appeared after the baseline was saved: nothing to compare it with.
      added++;
      continue;
    }
    bad++;
    if (want === null || got === null) {
      console.log(`DIFF ${n}: not run now`);
      continue;
    }
    const a = want.split('\n');
    const b = got.split('\n');
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    console.log(`DIFF ${n} line ${i + 1}:\n  baseline: ${a[i]}\n  now:      ${b[i]}`);
  }
  const compared = names.size - added;
  console.log(`${compared - bad} of ${compared} outputs identical${bad ? `, ${bad} differ` : ''}${added ? ` (${added} not in the baseline: save it again, or use --base REF)` : ''}`);
  return bad === 0;
}

function buildRef(ref) {
  const dir = mkdtempSync(join(tmpdir(), 'sysak-compare-base-'));
  const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', ref], { maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  return dir;
}

let argv = process.argv.slice(2);
let FILTER = null;
if (argv[0] === '--filter') {
  FILTER = new RegExp(argv[1]);
  argv = argv.slice(2);
}
if (!existsSync(CLI)) {
  console.error(`${CLI} missing: run npm run build first`);
  process.exit(2);
}
if (argv[0] === '--save') {
  const dir = resolve(argv[1] ?? join(ROOT, '.compare-baseline'));
  const r = await collect(CLI);
  save(dir, r);
  console.log(`baseline of ${r.size} outputs saved in ${dir}`);
} else if (argv[0] === '--base') {
  if (!argv[1]) {
    console.error('--base needs a git ref');
    process.exit(2);
  }
  const built = buildRef(argv[1]);
  // The REF's outputs stay in the default baseline directory: a later run without --base compares with them.
  const dir = join(ROOT, '.compare-baseline');
  try {
    save(dir, await collect(join(built, 'dist/src/cli/main.js')));
    process.exitCode = compare(dir, await collect(CLI)) ? 0 : 1;
  } finally {
    rmSync(built, { recursive: true, force: true });
  }
} else if (argv[0]?.startsWith('-')) {
  console.error('usage: compare-reports.mjs [--save [DIR] | --base REF | DIR]');
  process.exit(2);
} else {
  const dir = resolve(argv[0] ?? join(ROOT, '.compare-baseline'));
  if (!existsSync(dir)) {
    console.error(`no baseline in ${dir}: run with --save on the unchanged build first`);
    process.exit(2);
  }
  process.exitCode = compare(dir, await collect(CLI)) ? 0 : 1;
}
