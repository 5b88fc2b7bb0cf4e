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
        const v = openVmcore({ vmcore: join(REC, f), kallsyms: k === 'k5.10' ? join(REC, 'guest', 'kallsyms.txt') : null, btf: null });
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
 * module source), where they are recorded in ../rec (6.1 without a prefix). What is expected comes from
 * the recording: the manifest's `expect` (scenario.env EXPECT_*) and the module's ground truth
 * (leaked_slow: the leaks made while tracing; `cache`, or on 6.8+ the guest's /sys/kernel/slab answer,
 * the cache the objects really live in).
 */
function recordingTruth(dir: string): { expect: Record<string, string>; info: Record<string, string>; cache: string | null } {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const kv = (f: string) => (existsSync(f) ? Object.fromEntries(readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) : {});
  const info = kv(join(dir, 'guest', 'ground_truth_info.txt'));
  const sysfs = kv(join(dir, 'guest', 'cache_sysfs.txt'));
  const cache = info.cache && info.cache !== 'unknown' ? info.cache : sysfs.cache ?? null;
  return { expect: manifest.expect ?? {}, info, cache };
}

for (const k of ['', 'k5.10-', 'k6.12-']) {
  for (const scenario of ['slableak-named', 'slableak-merged', 'churn-none']) {
    const dir = join(ROOT, '..', 'rec', `${k}${scenario}`);
    const have = existsSync(join(dir, 'vmcore.kdump')) && existsSync(join(dir, 'manifest.json'));
    const kallsyms = k === 'k5.10-' ? join(dir, 'guest', 'kallsyms.txt') : null; // no kallsyms tables before 6.0
    describe.skipIf(!have)(`${k}${scenario} (${have ? dir : `skipped: ../rec/${k}${scenario} not recorded here`})`, () => {
      it('--from and --vmcore with the trace (kdump and ELF) give the expected verdict', async () => {
        const { expect: want, info, cache } = recordingTruth(dir);
        const runs = [
          await analyzeAny(requestFromRecording(dir, { ...defaultRequest(), scan: { workers: 0 } }), 'auto', requestFromRecording(dir).snapshots),
          ...(await Promise.all(['vmcore.kdump', 'vmcore.elf'].map((f) => analyze(req({ vmcore: join(dir, f), kallsyms, trace: join(dir, 'guest', 'trace.txt') }))))),
        ];
        for (const r of runs) {
          if (want.leak === '0' || info.leak_type === 'none') {
            expect(r.verdict, `${r.type}: ${r.verdictReason}`).toBeNull();
            continue;
          }
          expect(r.type).toBe('slab');
          const v = (r as Awaited<ReturnType<typeof analyze>>).verdict!;
          expect(v, r.verdictReason).not.toBeNull();
          expect(v.function).toMatch(new RegExp(`^${want.function}\\+0x[0-9a-f]+/0x[0-9a-f]+ \\[vmleak\\]$`));
          expect(v.cache).toBe(cache);
          expect(v.unfreed).toBe(Number(info.leaked_slow));
          expect(v.marked).toBe(Number(info.leaked_slow));
        }
      }, 300_000);
    });
  }
}
