/**
 * The regression tests of the 6.1 samples, on the other kernels the harness records on: Debian 11's
 * 5.10 (kmalloc_node/kmem_cache_alloc_node events, decimal pfn=, struct page slab fields, no kallsyms
 * tables in VMCOREINFO) and Debian 12's 6.12 (struct slab, page types, node=/accounted= fields, no
 * vmap_area_list). Samples are cut from ../rec/k5.10-* and ../rec/k6.12-* (samples/README.md); every
 * expected number comes from the module's ground truth and the harness manifest (expected.json), never
 * from this tool. These kernels have no -dbg package here, so crash and drgn give no allocated count:
 * the guest's /proc/slabinfo (SLUB counts per-CPU free objects as active: an upper bound) and the
 * ground truth (every leaked and table object is allocated: a lower bound) bracket it.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRequest, requestFromRecording, type AnalyzeRequest } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { analyzeAny } from '../src/analyze.js';
import { findSlabCache } from '../src/kernel/slub.js';
import { openVmcore } from '../src/kernel/kernel.js';
import { walkCache } from '../src/kernel/slub.js';
import { parseFtrace } from '../src/trace/ftrace.js';
import { ROOT, sample, sampleText } from './helpers.js';

interface KernelExpected {
  kernel: string;
  cache: string;
  leakFunction: string | null;
  leakCookie: string;
  leakedObjects: number;
  leakedWhileTracing: number;
  tableObjects: number;
  kaslrOffset: string;
  slabinfoAfter: { activeObjs: number; numObjs: number };
  traceEventsByType: Record<string, number>;
  moduleEventsByCallSite: Record<string, number>;
}

const exp = (rec: string): KernelExpected => JSON.parse(readFileSync(sample(`${rec}/expected.json`), 'utf8'));
const req = (over: Partial<AnalyzeRequest>): AnalyzeRequest => ({ ...defaultRequest(), scan: { workers: 0 }, ...over });

for (const k of ['k5.10', 'k6.12']) {
  const demo = `${k}-demo-kmalloc64`;
  const sanity = `${k}-sanity-none`;
  /** 5.10 dumps carry no kallsyms tables (VMCOREINFO exports them since 6.0): the guest's file goes with them. */
  const ks = (rec: string) => (existsSync(sample(`${rec}/guest/kallsyms.txt.gz`)) ? sample(`${rec}/guest/kallsyms.txt.gz`) : null);

  describe(`kernel ${exp(demo).kernel}: samples/${demo}, samples/${sanity}`, () => {
    it('trace: every event type the harness counted, the module call sites, no broken line', () => {
      for (const rec of [demo, sanity]) {
        const e = exp(rec);
        const t = parseFtrace(sampleText(`${rec}/guest/trace.txt.gz`), 'trace.txt');
        expect(t.stats.byEvent).toMatchObject(e.traceEventsByType);
        expect(t.stats.badLines).toBe(0);
        for (const [key, n] of Object.entries(e.moduleEventsByCallSite)) {
          const [ev, fn] = key.split(':');
          expect(t.events.filter((x) => x.event === ev && x.callSite?.startsWith(`${fn}+`)).length, key).toBe(n);
        }
        // kmalloc_node / kmem_cache_alloc_node (5.10) are allocations like their merged 6.x forms
        const allocEvents = Object.entries(e.traceEventsByType).filter(([ev]) => /^(kmalloc|kmem_cache_alloc)(_node)?$/.test(ev)).reduce((n, [, c]) => n + c, 0);
        expect(t.events.filter((x) => x.kind === 'alloc').length).toBe(allocEvents);
      }
    });

    it('vmcore extract: KASLR from the dump, the cache walk brackets the allocated count', () => {
      const e = exp(demo);
      const v = openVmcore({ vmcore: sample(`${demo}/vmcore.extract.gz`), kallsyms: ks(demo), btf: null });
      try {
        expect(`0x${v.prog.kaslrOffset.toString(16)}`).toBe(e.kaslrOffset);
        const w = walkCache(v, findSlabCache(v, 'kmalloc-64'));
        expect(w.warnings).toEqual([]);
        expect(w.allocated).toBeGreaterThanOrEqual(e.leakedObjects + e.tableObjects);
        expect(w.allocated).toBeLessThanOrEqual(e.slabinfoAfter.activeObjs);
        expect(w.total).toBeLessThanOrEqual(e.slabinfoAfter.numObjs);
      } finally {
        v.close();
      }
    });

    it('names demo_conn_add from the extract and the trace; every leaked object is in the top cluster', async () => {
      const e = exp(demo);
      const r = await analyze(req({ vmcore: sample(`${demo}/vmcore.extract.gz`), kallsyms: ks(demo), trace: sample(`${demo}/guest/trace.txt.gz`) }));
      expect(r.cache.name).toBe('kmalloc-64');
      expect(r.clusters[0].count).toBe(e.leakedObjects);
      expect(r.clusters[0].words?.[1].text).toBe('demo_conn_ops [memdemo]');
      expect(r.verdict?.function).toMatch(/^demo_conn_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[memdemo\]$/);
      expect(r.verdict?.unfreed).toBe(e.leakedWhileTracing);
      expect(r.verdict?.marked).toBe(e.leakedWhileTracing);
      for (const c of r.callSites) if (!c.function.startsWith('demo_conn_add+')) expect(c.marked).toBe(0);
      expect(r.unfreed.filter((u) => !u.readable)).toEqual([]);
    });

    it('--from the sample directory gives the same verdict', async () => {
      const a = await analyze(req({ vmcore: sample(`${demo}/vmcore.extract.gz`), kallsyms: ks(demo), trace: sample(`${demo}/guest/trace.txt.gz`) }));
      const b = await analyze({ ...requestFromRecording(sample(demo)), scan: { workers: 0 } });
      expect(b.verdict).toEqual(a.verdict);
    });

    it('finds no leak in the no-leak control', async () => {
      const e = exp(sanity);
      const r = await analyze(req({ vmcore: sample(`${sanity}/vmcore.extract.gz`), kallsyms: ks(sanity), geometry: { cache: 'kmalloc-64' }, trace: sample(`${sanity}/guest/trace.txt.gz`) }));
      expect(r.cache.allocated).toBeGreaterThanOrEqual(e.tableObjects);
      expect(r.cache.allocated).toBeLessThanOrEqual(e.slabinfoAfter.activeObjs);
      expect(r.verdict).toBeNull();
      expect(r.callSites.every((c) => c.marked === 0)).toBe(true);
    });
  });

  /** The whole recording, where it exists: every ground-truth object is allocated in the dump. */
  const REC = join(ROOT, '..', 'rec', demo);
  const have = existsSync(join(REC, 'vmcore.kdump'));
  describe.skipIf(!have)(`full ${k} demo recording (${have ? REC : `skipped: ../rec/${demo}/vmcore.kdump not recorded here`})`, () => {
    it('every ground-truth leak and table object is an allocated object of kmalloc-64, in both dump formats', () => {
      for (const f of ['vmcore.kdump', 'vmcore.elf']) {
        const v = openVmcore({ vmcore: join(REC, f), kallsyms: null, btf: null }); // 5.10: the tables found in the image
        try {
          const w = walkCache(v, findSlabCache(v, 'kmalloc-64'));
          const allocated = new Set<bigint>();
          for (let k = 0; k < w.pfns.length; k++) for (let i = 0; i < w.objects[k]; i++) {
            const a = w.slabBase(k) + BigInt(i * 64);
            if (!w.isFree(a)) allocated.add(a);
          }
          expect(allocated.size).toBe(w.allocated);
          let n = 0;
          for (const line of readFileSync(join(REC, 'guest', 'ground_truth_objects.txt'), 'utf8').split('\n')) {
            if (!/^(leak|table) /.test(line)) continue;
            n++;
            expect(allocated.has(BigInt(line.split(' ')[1])), line).toBe(true);
          }
          expect(n).toBe(exp(demo).leakedObjects + exp(demo).tableObjects);
        } finally {
          v.close();
        }
      }
    }, 120_000);
  });
}

/**
 * Our slab scenarios on every kernel (test/scenarios/slableak-named, slableak-merged, churn-none, one
 * module source), where they are recorded in ../rec (6.1 without a prefix), and their CI samples
 * (samples/{,k5.10-,k6.12-}SCENARIO, cut by test/scenarios/kernel-samples.sh). What is expected comes
 * from the recording: the manifest's `expect` (scenario.env EXPECT_*) and the module's ground truth
 * (leaked_slow: the leaks made while tracing; leaked_total: every leaked object; `cache`, or on 6.8+
 * the guest's /sys/kernel/slab answer: the cache the objects really live in, which for the merged
 * scenario depends on the kernel). No --kallsyms anywhere: 5.10 dumps are read with the kallsyms
 * tables found in the kernel image.
 */
interface ScenarioTruth {
  expect: Record<string, string>;
  cache: string | null;
  leakedTotal: number;
  leakedWhileTracing: number;
}

function recordingTruth(dir: string): ScenarioTruth {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const kv = (f: string) => (existsSync(f) ? Object.fromEntries(readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) : {});
  const info = kv(join(dir, 'guest', 'ground_truth_info.txt'));
  const sysfs = kv(join(dir, 'guest', 'cache_sysfs.txt'));
  const cache = info.cache && info.cache !== 'unknown' ? info.cache : sysfs.cache ?? null;
  const expect = { ...(manifest.expect ?? {}) };
  if (info.leak_type === 'none') expect.leak = '0';
  return { expect, cache, leakedTotal: Number(info.leaked_total), leakedWhileTracing: Number(info.leaked_slow) };
}

type AnyReport = Awaited<ReturnType<typeof analyzeAny>>;

/** The verdict the scenario's ground truth asks for, in every run (--from and --vmcore alike). */
function expectScenarioVerdict(runs: AnyReport[], truth: ScenarioTruth): void {
  for (const r of runs) {
    if (truth.expect.leak === '0') {
      expect(r.verdict, `${r.type}: ${r.verdictReason}`).toBeNull();
      continue;
    }
    expect(r.type).toBe('slab');
    const v = (r as Awaited<ReturnType<typeof analyze>>).verdict!;
    expect(v, r.verdictReason).not.toBeNull();
    expect(v.function).toMatch(new RegExp(`^${truth.expect.function}\\+0x[0-9a-f]+/0x[0-9a-f]+ \\[vmleak\\]$`));
    expect(v.cache).toBe(truth.cache);
    expect(v.unfreed).toBe(truth.leakedWhileTracing);
    expect(v.marked).toBe(truth.leakedWhileTracing);
    // every leaked object (bulk at load and while tracing) is in the dump and looks alike
    expect(v.similarObjects).toBe(truth.leakedTotal);
  }
}

const SCENARIOS = ['slableak-named', 'slableak-merged', 'churn-none'];

for (const k of ['', 'k5.10-', 'k6.12-']) {
  for (const scenario of SCENARIOS) {
    const dir = join(ROOT, '..', 'rec', `${k}${scenario}`);
    const have = existsSync(join(dir, 'vmcore.kdump')) && existsSync(join(dir, 'manifest.json'));
    describe.skipIf(!have)(`${k}${scenario} (${have ? dir : `skipped: ../rec/${k}${scenario} not recorded here`})`, () => {
      it('--from and --vmcore with the trace (kdump and ELF) give the expected verdict', async () => {
        const truth = recordingTruth(dir);
        expectScenarioVerdict([
          await analyzeAny(requestFromRecording(dir, { ...defaultRequest(), scan: { workers: 0 } }), 'auto', requestFromRecording(dir).snapshots),
          ...(await Promise.all(['vmcore.kdump', 'vmcore.elf'].map((f) => analyze(req({ vmcore: join(dir, f), trace: join(dir, 'guest', 'trace.txt') }))))),
        ], truth);
      }, 300_000);
    });
  }
}

interface SampleTruth extends ScenarioTruth {
  kernel: string;
  tableObjects: number;
}

for (const k of ['', 'k5.10-', 'k6.12-']) {
  for (const scenario of SCENARIOS) {
    const name = `${k}${scenario}`;
    const truth: SampleTruth = JSON.parse(readFileSync(sample(`${name}/expected.json`), 'utf8'));
    describe(`samples/${name} (kernel ${truth.kernel})`, () => {
      it('the extract (no --kallsyms) and the cut trace give the verdict of the full recording: --from and --vmcore', async () => {
        const from = await analyzeAny(requestFromRecording(sample(name), { ...defaultRequest(), scan: { workers: 0 } }), 'auto', requestFromRecording(sample(name)).snapshots);
        const vmcore = await analyze(req({ vmcore: sample(`${name}/vmcore.extract.gz`), trace: sample(`${name}/guest/trace.txt.gz`) }));
        expect(JSON.stringify(from.source)).toMatch(/vmcore\.extract\.gz/);
        expectScenarioVerdict([from, vmcore], truth);
        if (truth.expect.leak === '0') return;
        // the cache walk: every leaked and table object is allocated, nothing else of the scenario
        expect(vmcore.cache.name).toBe(truth.cache);
        expect(vmcore.cache.allocated).toBeGreaterThanOrEqual(truth.leakedTotal + (scenario === 'slableak-named' ? truth.tableObjects : 0));
        for (const c of vmcore.callSites) if (!c.function.startsWith(`${truth.expect.function}+`)) expect(c.marked, c.function).toBe(0);
      });

      if (truth.expect.leak !== '0') return;
      it('the churn was traced, and no kind names it: slab (its cache), vmalloc and page', async () => {
        const t = parseFtrace(sampleText(`${name}/guest/trace.txt.gz`), 'trace.txt');
        expect(t.stats.badLines).toBe(0);
        const churn = (kind: string) => t.events.filter((e) => e.kind === kind && (e.callSite?.startsWith('vmleak_churn_alloc+') || e.stack?.some((f) => f.startsWith('vmleak_churn_alloc')))).length;
        expect(churn('alloc')).toBeGreaterThan(1000); // kmalloc(128) and the named cache, 2 each per tick
        expect(churn('page_alloc')).toBeGreaterThan(1000); // alloc_pages and vmalloc's pages
        const base = requestFromRecording(sample(name), { ...defaultRequest(), scan: { workers: 0 } });
        const snaps = requestFromRecording(sample(name)).snapshots;
        const slab = await analyze({ ...base, geometry: { cache: truth.cache! } });
        expect(slab.cache.name).toBe(truth.cache);
        expect(slab.cache.allocated).toBeGreaterThanOrEqual(truth.tableObjects);
        for (const type of ['vmalloc', 'page'] as const) {
          const r = await analyzeAny(base, type, snaps);
          expect(r.type).toBe(type);
          expect(r.verdict, `${type}: ${r.verdictReason}`).toBeNull();
        }
        expect(slab.verdict, slab.verdictReason).toBeNull();
        expect(slab.callSites.every((c) => c.marked === 0)).toBe(true);
      });
    });
  }
}
