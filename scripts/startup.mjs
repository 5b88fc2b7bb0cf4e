#!/usr/bin/env node
/**
 * Start-up time: milliseconds from spawn to the first byte on stdout, median and min of N runs, for the
 * single executable and for `node dist/src/cli/main.js`. Quote numbers only from a run under
 * `flock /work/heavy.lock` on an idle machine. Usage: node scripts/startup.mjs [-n 15] [-- ARGS...]
 * (default ARGS: memleak -c, the quick check; it needs root and /proc).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const cmdArgs = dd >= 0 ? argv.slice(dd + 1) : ['memleak', '-c'];
const nIdx = argv.indexOf('-n');
const runs = nIdx >= 0 && nIdx < (dd < 0 ? argv.length : dd) ? Number(argv[nIdx + 1]) : 15;

function firstByteMs(cmd, args) {
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    let first = null;
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    p.stdout.once('data', () => (first = Number(process.hrtime.bigint() - t0) / 1e6));
    p.stdout.resume();
    p.on('error', fail);
    p.on('close', (code) => (code === 0 && first !== null ? ok({ first, total: Number(process.hrtime.bigint() - t0) / 1e6 }) : fail(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

const exe = join(ROOT, 'dist', `sysak-linux-${process.arch}`);
const subjects = [
  ['single executable', exe, cmdArgs],
  ['node dist/src/cli/main.js', process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), ...cmdArgs]],
].filter(([, cmd, a]) => existsSync(cmd === process.execPath ? a[0] : cmd));

console.log(`time to the first line of \`sysak ${cmdArgs.join(' ')}\`, ${runs} runs each (1 warm-up)`);
for (const [name, cmd, a] of subjects) {
  await firstByteMs(cmd, a);
  const firsts = [];
  const totals = [];
  for (let i = 0; i < runs; i++) {
    const r = await firstByteMs(cmd, a);
    firsts.push(r.first);
    totals.push(r.total);
  }
  const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  console.log(`${name.padEnd(28)} first line: median ${med(firsts).toFixed(0)} ms, min ${Math.min(...firsts).toFixed(0)} ms; exit: median ${med(totals).toFixed(0)} ms`);
}
