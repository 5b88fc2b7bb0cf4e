/**
 * `npm run fuzz`: the long randomized campaign over the same targets as fuzz.test.ts. A new seed each
 * run (or --seed N to replay one), inputs generated here and read in a child process under a watchdog
 * of 5 s of its CPU time (read from /proc, so a busy machine does not turn slow into "hung"; 60 s of
 * wall time at most); a hang is a failure and the child is replaced. Every failing input is saved under
 * fuzz-failures/ (git-ignored) with what was done to the seed and why it failed.
 *
 *   npm run fuzz -- --minutes 10 [--seed 1234] [--target ftrace]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { TARGETS, verdictOf, type Target } from './targets.js';
import { describeEdits, editsArb, mutateWithLog } from './mutate.js';

const HANG_MS = 5000;
const WALL_MS = 60_000;

interface Job {
  target: string;
  bytes: Uint8Array;
}

interface Outcome {
  ok: boolean;
  why: string | null;
  error: string | null;
  ms: number;
}


function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** CPU time (user + system) of a process in ms, from /proc/PID/stat (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

class Runner {
  private child: ChildProcess | null = null;
  private start(): ChildProcess {
    this.child = fork(fileURLToPath(import.meta.url), ['--child'], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    return this.child;
  }
  /** Runs one job; over HANG_MS of the child's CPU time (or WALL_MS) the child is killed: a hang. */
  run(job: Job): Promise<Outcome> {
    const c = this.child ?? this.start();
    const cpu0 = cpuMs(c.pid!);
    const t0 = Date.now();
    return new Promise((resolve) => {
      const done = (o: Outcome) => {
        clearInterval(watch);
        c.removeAllListeners('message');
        c.removeAllListeners('exit');
        resolve(o);
      };
      const watch = setInterval(() => {
        const used = cpuMs(c.pid!) - cpu0;
        if (used > HANG_MS || Date.now() - t0 > WALL_MS) {
          c.kill('SIGKILL');
          this.child = null;
          done({ ok: false, why: `hang: no result after ${used} ms of CPU (${Date.now() - t0} ms wall)`, error: null, ms: Date.now() - t0 });
        }
      }, 250);
      c.once('message', (o: Outcome) => done(o));
      c.once('exit', (code, sig) => {
        this.child = null;
        done({ ok: false, why: `child died: exit ${code} ${sig ?? ''}`, error: null, ms: Date.now() - t0 });
      });
      c.send(job);
    });
  }
  stop(): void {
    this.child?.kill();
  }
}

async function main(): Promise<void> {
  const minutes = Number(arg('minutes') ?? 10);
  const seed = Number(arg('seed') ?? Math.floor(Math.random() * 2 ** 31));
  const only = arg('target');
  const outDir = join(process.cwd(), 'fuzz-failures');
  const targets = TARGETS.filter((t) => !only || t.name === only);
  if (targets.length === 0) throw new Error(`no target ${only}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.stdout.write(`sysak fuzz: seed ${seed}, ${minutes} min, ${targets.length} targets, ${HANG_MS} ms of CPU per input; failures go to ${outDir}\n`);
  const seeds = new Map<string, Uint8Array>();
  for (const t of targets) seeds.set(t.name, await t.seed());
  const stats = new Map(targets.map((t) => [t.name, { tried: 0, refused: 0, failed: 0, maxMs: 0 }]));
  const runner = new Runner();
  const end = Date.now() + minutes * 60_000;
  let failures = 0;
  let round = 0;
  const arbs = new Map(targets.map((t) => [t.name, editsArb(t.kind, t.hotBytes)]));
  const pending = new Map<string, ((n: number) => import('./mutate.js').Edit)[][]>();
  const next = (t: Target) => {
    let q = pending.get(t.name);
    if (!q || q.length === 0) {
      q = fc.sample(arbs.get(t.name)!, { seed: seed + round * 7919 + t.name.length, numRuns: 50 });
      pending.set(t.name, q);
    }
    return q.pop()!;
  };
  let lastReport = Date.now();
  while (Date.now() < end) {
    round++;
    for (const t of targets) {
      // The whole-analysis target costs ~100x a parser: one in 8 rounds.
      if (t.heavy && round % 8 !== 0) continue;
      const { bytes, applied } = mutateWithLog(seeds.get(t.name)!, t.kind, next(t));
      const o = await runner.run({ target: t.name, bytes });
      const s = stats.get(t.name)!;
      s.tried++;
      s.maxMs = Math.max(s.maxMs, Math.round(o.ms));
      if (o.error) s.refused++;
      if (!o.ok) {
        s.failed++;
        failures++;
        mkdirSync(outDir, { recursive: true });
        const base = join(outDir, `${t.name}-${seed}-${s.tried}`);
        writeFileSync(`${base}.input`, bytes);
        writeFileSync(`${base}.txt`, `target: ${t.name}\nseed: ${seed}\nwhy: ${o.why}\nedits: ${describeEdits(applied)}\n`);
        process.stdout.write(`FAIL ${t.name}: ${o.why?.split('\n')[0]} (saved ${base}.input)\n`);
      }
      if (Date.now() >= end) break;
    }
    if (Date.now() - lastReport > 60_000) {
      lastReport = Date.now();
      const total = [...stats.values()].reduce((n, s) => n + s.tried, 0);
      process.stdout.write(`${new Date().toISOString()} ${total} inputs, ${failures} failures\n`);
    }
  }
  runner.stop();
  const total = [...stats.values()].reduce((n, s) => n + s.tried, 0);
  process.stdout.write(`\n${'target'.padEnd(18)} ${'inputs'.padStart(7)} ${'refused'.padStart(8)} ${'failed'.padStart(7)} ${'max ms'.padStart(7)}\n`);
  for (const [name, s] of stats) process.stdout.write(`${name.padEnd(18)} ${String(s.tried).padStart(7)} ${String(s.refused).padStart(8)} ${String(s.failed).padStart(7)} ${String(s.maxMs).padStart(7)}\n`);
  process.stdout.write(`seed ${seed}: ${total} inputs in ${minutes} min, ${failures} failures\n`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `summary-${seed}.json`), JSON.stringify({ seed, minutes, total, failures, targets: Object.fromEntries(stats) }, null, 1));
  process.exitCode = failures ? 1 : 0;
}

if (process.argv.includes('--child')) {
  const byName = new Map(TARGETS.map((t) => [t.name, t]));
  process.on('message', async (job: Job) => {
    const t = byName.get(job.target)!;
    const start = performance.now();
    const v = await verdictOf(t, job.bytes);
    const out: Outcome = { ok: v.ok, why: v.ok ? null : v.why, error: v.ok ? v.error : null, ms: performance.now() - start };
    process.send!(out);
  });
} else {
  await main();
}
