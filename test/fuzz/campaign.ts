/**
 * `npm run fuzz`: the long randomized campaign over the same targets as fuzz.test.ts. A new seed each
 * run (or --seed N to replay one), inputs generated here and read in a worker thread under a 5 s
 * watchdog (a hang is a failure: the worker is replaced), every failing input saved under
 * fuzz-failures/ (git-ignored) with what was done to the seed and why it failed.
 *
 *   npm run fuzz -- --minutes 10 [--seed 1234] [--target ftrace]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import fc from 'fast-check';
import { TARGETS, verdictOf, type Target } from './targets.js';
import { describeEdits, editsArb, mutateWithLog } from './mutate.js';

const HANG_MS = 5000;

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

class Runner {
  private worker: Worker | null = null;
  start(): Worker {
    this.worker = new Worker(new URL(import.meta.url));
    this.worker.unref();
    return this.worker;
  }
  /** Runs one job; a hang over HANG_MS kills the worker and is reported as such. */
  run(job: Job): Promise<Outcome> {
    const w = this.worker ?? this.start();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        w.removeAllListeners();
        void w.terminate();
        this.worker = null;
        resolve({ ok: false, why: `hang: no result after ${HANG_MS} ms`, error: null, ms: HANG_MS });
      }, HANG_MS);
      w.once('message', (o: Outcome) => {
        clearTimeout(timer);
        w.removeAllListeners('error');
        resolve(o);
      });
      w.once('error', (e) => {
        clearTimeout(timer);
        w.removeAllListeners('message');
        this.worker = null;
        resolve({ ok: false, why: `worker died: ${e.message}`, error: null, ms: 0 });
      });
      w.postMessage(job);
    });
  }
  stop(): void {
    void this.worker?.terminate();
  }
}

async function main(): Promise<void> {
  const minutes = Number(arg('minutes') ?? 10);
  const seed = Number(arg('seed') ?? Math.floor(Math.random() * 2 ** 31));
  const only = arg('target');
  const outDir = join(process.cwd(), 'fuzz-failures');
  const targets = TARGETS.filter((t) => !only || t.name === only);
  if (targets.length === 0) throw new Error(`no target ${only}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.stdout.write(`sysak fuzz: seed ${seed}, ${minutes} min, ${targets.length} targets, ${HANG_MS} ms per input; failures go to ${outDir}\n`);
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
      let o = await runner.run({ target: t.name, bytes });
      if (o.why?.startsWith('hang')) {
        // Another process may have had both cores: a hang counts only if a fresh worker hangs again.
        const again = await runner.run({ target: t.name, bytes });
        if (!again.why?.startsWith('hang')) o = { ...again, ms: Math.max(again.ms, HANG_MS) };
      }
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

if (!isMainThread) {
  const byName = new Map(TARGETS.map((t) => [t.name, t]));
  parentPort!.on('message', async (job: Job) => {
    const t = byName.get(job.target)!;
    const start = performance.now();
    const v = await verdictOf(t, job.bytes);
    const out: Outcome = { ok: v.ok, why: v.ok ? null : v.why, error: v.ok ? v.error : null, ms: performance.now() - start };
    parentPort!.postMessage(out);
  });
} else {
  await main();
}
