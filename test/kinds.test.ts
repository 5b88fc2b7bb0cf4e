/**
 * vmalloc and page leaks (issue 7) on recordings of our own scenarios (test/scenarios/vmleak-*,
 * recorded with ../shared/harness): --type auto decides from the /proc snapshots, the caller is named,
 * balanced noise callers (vmleak_noise_get/put) are not, and the slab demo still says slab.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRequest, requestFromRecording } from '../src/request.js';
import { analyzeAny, type PageReport, type VmallocReport } from '../src/analyze.js';
import { vmallocByCaller, vmallocVerdict } from '../src/vmalloc/vmallocinfo.js';
import { parseVmallocinfo } from '../src/check/vmallocinfo.js';
import { callerOf } from '../src/pages/page-trace.js';
import { openVmcore } from '../src/kernel/kernel.js';
import { vmapAreasFromDump } from '../src/vmalloc/vmap-areas.js';
import { ROOT, sample, sampleText } from './helpers.js';

/** The module's ground truth (debugfs vmleak/info, saved by the harness as guest/ground_truth_info.txt). */
function groundTruth(dir: string): Record<string, string> {
  return Object.fromEntries(readFileSync(join(dir, 'guest', 'ground_truth_info.txt'), 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

async function auto(dir: string) {
  const req = requestFromRecording(dir, { ...defaultRequest(), scan: { workers: 0 } });
  return analyzeAny(req, 'auto', req.snapshots);
}

describe('--type auto on the recordings', () => {
  it('vmalloc scenario: vmalloc leak by vmleak_buf_add, noise callers not named', async () => {
    const r = (await auto(sample('vmleak-vmalloc'))) as VmallocReport;
    expect(r.type).toBe('vmalloc');
    expect(r.check?.leak).toBe('vmalloc');
    // %pS names the module after the offset, as the slab and page verdicts do
    expect(r.verdict?.function).toMatch(/^vmleak_buf_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[vmleak\]$/);
    expect(r.verdict?.growthAreas).toBe(2382); // leaked_total of the module's ground truth
    expect(r.callers.find((c) => c.caller.startsWith('vmleak_noise'))?.growthAreas ?? 0).toBe(0);
  });

  it('page scenario: page leak by vmleak_page_add, noise callers absent', async () => {
    const r = (await auto(sample('vmleak-page'))) as PageReport;
    expect(r.type).toBe('page');
    expect(r.check?.leak).toBe('page');
    expect(r.verdict?.function).toBe('vmleak_page_add');
    expect(r.verdict?.blocks).toBe(385); // leaked_slow: the leaks made while tracing
    expect(r.verdict?.bytes).toBe(385 * 8192); // order-1 blocks, counted once
    expect(r.callers.some((c) => c.caller.startsWith('vmleak_noise'))).toBe(false);
    expect(r.trace.skippedMovable).toBeGreaterThan(0);
  });

  it('slab demo still reports slab', async () => {
    const r = await auto(sample('demo-kmalloc64'));
    expect(r.type).toBe('slab');
    expect(r.verdict?.function).toBe('demo_conn_add+0x24/0x140 [memdemo]');
  });

  it('a single large vmalloc area (memdemo\'s ground-truth array) is not a leak', () => {
    const rows = vmallocByCaller(
      parseVmallocinfo(sampleText('demo-kmalloc64/guest/vmallocinfo.after'), 'after'),
      parseVmallocinfo(sampleText('demo-kmalloc64/guest/vmallocinfo.before'), 'before'),
    );
    expect(rows[0].growthAreas).toBe(1);
    expect(vmallocVerdict(rows).row).toBeNull();
  });

  it('the caller is the first frame outside the allocator and the tracer', () => {
    expect(callerOf(['trace_event_raw_event_mm_page_alloc', '__alloc_pages', '__get_free_pages', 'pgd_alloc', 'mm_init'])).toBe('pgd_alloc');
    expect(callerOf(['__alloc_pages+0x1a/0x300', 'allocate_slab+0x8e/0x480', 'new_slab'])).toBe('');
    expect(callerOf(['__alloc_pages_noprof+0x1a/0x300', '__pte_alloc_kernel+0x1c/0xa0', 'vmap_pte_range'])).toBe('');
    expect(callerOf(null)).toBeNull();
  });
});

/** The same scenarios on the harness's other kernels (samples cut from ../rec/k*-vmleak-*, see samples/README.md). */
for (const k of ['k5.10', 'k6.12']) {
  describe(`--type auto on the ${k} samples`, () => {
    it('vmalloc: vmleak_buf_add grew by every leaked area; noise callers did not grow', async () => {
      const dir = sample(`${k}-vmleak-vmalloc`);
      // 5.10 without entropy prints every %pK address as 0x(____ptrval____): the lines still count
      if (k === 'k5.10') expect(sampleText(`${k}-vmleak-vmalloc/guest/vmallocinfo.after.gz`)).toMatch(/^0x\(____ptrval____\)-0x\(____ptrval____\) /m);
      const r = (await auto(dir)) as VmallocReport;
      expect(r.type).toBe('vmalloc');
      expect(r.verdict?.function).toMatch(/^vmleak_buf_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[vmleak\]$/);
      expect(r.verdict?.growthAreas).toBe(Number(groundTruth(dir).leaked_total));
      expect(r.callers.find((c) => c.caller.startsWith('vmleak_noise'))?.growthAreas ?? 0).toBe(0);
    });

    it('page: vmleak_page_add holds every block leaked while tracing, from the kernel stacks', async () => {
      const dir = sample(`${k}-vmleak-page`);
      const gt = groundTruth(dir);
      const r = (await auto(dir)) as PageReport;
      expect(r.type).toBe('page');
      expect(r.check?.leak).toBe('page');
      expect(r.verdict?.function).toBe('vmleak_page_add');
      expect(r.verdict?.blocks).toBe(Number(gt.leaked_slow));
      expect(r.verdict?.bytes).toBe(Number(gt.leaked_slow) * 8192);
      expect(r.callers.some((c) => c.caller.startsWith('vmleak_noise'))).toBe(false);
      expect(r.trace.withoutStack).toBe(0);
      // 6.10+ stacks go through the allocator's *_noprof functions, which must not be named
      if (k === 'k6.12') expect(sampleText(`${k}-vmleak-page/guest/trace.txt.gz`)).toMatch(/=> __alloc_pages_noprof\b/);
    });
  });
}

const REC = join(ROOT, '..', 'rec');

/** Each kernel's recordings of our scenarios in ../rec (6.1: no prefix), where they were recorded. */
for (const k of ['', 'k5.10-', 'k6.12-']) {
  const vm = join(REC, `${k}vmleak-vmalloc`);
  const pg = join(REC, `${k}vmleak-page`);
  const kallsyms = (_dir: string) => null; // before 6.0 (5.10): the kallsyms tables found in the kernel image
  const haveVm = existsSync(join(vm, 'vmcore.kdump'));
  const havePg = existsSync(join(pg, 'vmcore.kdump'));
  describe.skipIf(!haveVm)(`vmap areas from the vmcore (${haveVm ? vm : `skipped: ../rec/${k}vmleak-vmalloc/vmcore.kdump not recorded here`})`, () => {
    it('walks the busy vmap areas to the same callers as the guest\'s /proc/vmallocinfo', () => {
      const v = openVmcore({ vmcore: join(vm, 'vmcore.kdump'), kallsyms: kallsyms(vm), btf: null });
      try {
        const rows = vmallocByCaller(vmapAreasFromDump(v).areas, null);
        const snap = vmallocByCaller(parseVmallocinfo(readFileSync(join(vm, 'guest', 'vmallocinfo.after'), 'utf8'), 'after'), null);
        expect(rows[0].caller).toMatch(/^vmleak_buf_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[vmleak\]$/);
        expect(rows[0].areas).toBe(Number(groundTruth(vm).leaked_total));
        expect(rows[0].areas).toBe(snap[0].areas);
        expect(rows[0].bytes).toBe(snap[0].bytes);
      } finally {
        v.close();
      }
    });
  });

  describe.skipIf(!havePg)(`page leak with its vmcore (${havePg ? pg : `skipped: ../rec/${k}vmleak-page/vmcore.kdump not recorded here`})`, () => {
    it('every unfreed vmleak block starts with the module\'s magic; the census alone finds every leaked block', async () => {
      const gt = groundTruth(pg);
      const r = (await auto(pg)) as PageReport;
      expect(r.verdict?.function).toBe('vmleak_page_add');
      expect(r.verdict?.blocks).toBe(Number(gt.leaked_slow));
      expect(r.verdict?.similar).toBe(r.verdict?.blocks);
      expect(r.verdict?.pattern).toBe('0x00006b61656c6d76');
      expect(r.dumpPages?.headers[0]).toEqual({ value: '0x00006b61656c6d76', pages: Number(gt.leaked_total), text: 'vmleak' });
    });
  });
}

describe.skipIf(!existsSync(join(ROOT, '..', 'shared', 'recordings', 'demo-kmalloc64')))('the slab demo\'s dump', () => {
  it('the page census of the slab demo\'s dump shows no such pile-up', async () => {
    const demo = join(ROOT, '..', 'shared', 'recordings', 'demo-kmalloc64');
    const req = { ...requestFromRecording(demo, defaultRequest()), trace: null };
    const r = (await analyzeAny(req, 'page', null)) as PageReport;
    expect(r.verdict).toBeNull();
    expect(r.dumpPages!.headers.every((h) => h.value !== '0x00006b61656c6d76')).toBe(true);
    expect(r.dumpPages!.headers[0].pages).toBeLessThan(600);
  });
});
