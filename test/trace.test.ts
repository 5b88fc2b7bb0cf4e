import { describe, expect, it } from 'vitest';
import { parseFtrace } from '../src/trace/ftrace.js';
import { outstandingSlab } from '../src/slab/outstanding.js';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { requestFromRecording } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { expected, sample, sampleText } from './helpers.js';

describe('ftrace text', () => {
  it('reads the recorded trace: events by type, markers, %pS call sites', () => {
    const t = parseFtrace(sampleText('demo-kmalloc64/guest/trace.txt.gz'), 'trace.txt');
    // manifest.json trace.events_by_type
    expect(t.stats.byEvent).toMatchObject({ kmalloc: 10457, kfree: 10083, kmem_cache_alloc: 448, kmem_cache_free: 495, mm_page_alloc: 1094, mm_page_free: 202 });
    expect(t.stats.markers.map((m) => m.text)).toEqual(['HARNESS_TRACE_START', 'HARNESS_TRACE_STOP']);
    expect(t.stats.badLines).toBe(0);
    expect(t.stats.callSiteFormat).toBe('symbolic');
    const conn = t.events.filter((e) => e.callSite === 'demo_conn_add+0x24/0x140 [memdemo]');
    expect(conn.length).toBe(expected('demo-kmalloc64').leakedWhileTracing);
    expect(conn[0]).toMatchObject({ kind: 'alloc', bytesReq: 40, bytesAlloc: 64, comm: 'kworker/0:1', gfp: 'GFP_KERNEL', accounted: false });
  });

  it('attaches stacks to the event of the same CPU even when another CPU interleaves', () => {
    const text = [
      '  kworker/0:1-17  [000] .....  3.10: kmalloc: call_site=demo_conn_add+0x24/0x140 [memdemo] ptr=ffff8eadc3d02000 bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false',
      '  cat-133         [001] .....  3.11: kfree: call_site=walk_component+0x7a/0x150 ptr=ffff8eade07e4740',
      '  kworker/0:1-17  [000] .....  3.12: <stack trace>',
      ' => trace_event_raw_event_kmalloc',
      ' => kmalloc_trace',
      ' => demo_conn_add',
      '  cat-133         [001] .....  3.13: <stack trace>',
      ' => kfree',
      ' => walk_component',
      'CPU:1 [LOST 12 EVENTS]',
    ].join('\n');
    const t = parseFtrace(text, 's.txt');
    expect(t.events[0].stack).toEqual(['trace_event_raw_event_kmalloc', 'kmalloc_trace', 'demo_conn_add']);
    expect(t.events[1].stack).toEqual(['kfree', 'walk_component']);
    expect(t.stats.lostEvents).toBe(12);
  });

  it('attaches every stack of the stacktrace recording', () => {
    const t = parseFtrace(sampleText('demo-kmalloc64-stacktrace/guest/trace.txt.gz'), 'trace.txt');
    const conn = t.events.filter((e) => e.callSite?.startsWith('demo_conn_add'));
    expect(conn.length).toBe(expected('demo-kmalloc64-stacktrace').leakedWhileTracing);
    expect(conn.every((e) => e.stack?.includes('demo_conn_add'))).toBe(true);
    expect(t.stats.badLines).toBe(0);
  });

  it('resolves hex call sites of older kernels through kallsyms', () => {
    const ks = Kallsyms.parse(sampleText('demo-kmalloc64/guest/kallsyms.txt.gz'));
    const t = parseFtrace('  kworker/0:1-17  [000] ....  3.10: kmalloc: call_site=ffffffffc0612c94 ptr=ffff8eadc3d02000 bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL\n', 'old.txt', ks);
    expect(t.events[0].callSite).toBe('demo_conn_add+0x24/0x140 [memdemo]');
    expect(() => parseFtrace('  a-1  [000] ....  3.10: kmalloc: call_site=ffffffff00000010 ptr=ffff8eadc3d02000 bytes_req=40 bytes_alloc=64\n', 'other.txt', ks)).toThrowError(
      /not from the traced kernel/,
    );
  });

  it('refuses a symbolic trace whose functions this kallsyms does not have', () => {
    const ks = Kallsyms.parse('ffffffff81000000 T _stext\nffffffff81000100 T other_fn\n', 'k.txt');
    const line = '  a-1  [000] .....  3.10: kmalloc: call_site=demo_conn_add+0x24/0x140 [memdemo] ptr=ffff8eadc3d02000 bytes_req=40 bytes_alloc=64';
    expect(() => parseFtrace(line, 'sym.txt', ks)).toThrowError(/only 0 of 1 trace call-site functions are in k\.txt/);
    expect(parseFtrace(line.replace('demo_conn_add+0x24/0x140 [memdemo]', 'other_fn+0x4/0x10'), 'sym.txt', ks).events).toHaveLength(1);
  });

  it('refuses hashed pointers with the way out', () => {
    const lines = Array.from({ length: 10 }, (_, i) => `  a-1  [000] .....  3.${10 + i}: kmalloc: call_site=f+0x1/0x10 ptr=00000000e70e10e${i} bytes_req=40 bytes_alloc=64`);
    expect(() => parseFtrace(lines.join('\n'), 'h.txt')).toThrowError(/hashed.*no_hash_pointers/);
  });

  it('counts broken lines and names the first one', () => {
    const t = parseFtrace(('  a-1  [000] .....  3.10: kfree: call_site=f+0x1/0x10 ptr=ffff8eadc3d02000\ngarbage here\n  a-1  [000] .....  3.20: kfree: call_site=f ptr=zz\n'), 'b.txt');
    expect(t.stats.badLines).toBe(2);
    expect(t.stats.firstBadLine).toBe(2);
    expect(() => parseFtrace('just\ngarbage\n', 'g.txt')).toThrowError(/no kmem trace events/);
  });

  it('keeps the original free-only window: young allocations are marked as such or dropped when strict', () => {
    const t = parseFtrace(sampleText('demo-kmalloc64/guest/trace.txt.gz'), 'trace.txt');
    const all = outstandingSlab(t, { freeOnlyPct: 20, bytesAlloc: 64 });
    const strict = outstandingSlab(t, { freeOnlyPct: 20, bytesAlloc: 64, strict: true });
    const conn = (r: typeof all) => r.allocs.filter((a) => a.callSite.startsWith('demo_conn_add'));
    expect(conn(all).length).toBe(401);
    expect(conn(strict).length).toBeGreaterThanOrEqual(315);
    expect(conn(strict).length).toBeLessThanOrEqual(325); // 80% of 20 s at 20/s
    expect(conn(all).filter((a) => a.young).length).toBe(401 - conn(strict).length);
  });
});

describe('verdict on the recordings', () => {
  for (const rec of ['demo-kmalloc64', 'demo-kmalloc64-stacktrace']) {
    it(`${rec}: demo_conn_add leaks in kmalloc-64, every other call site unmarked`, async () => {
      const exp = expected(rec);
      const r = await analyze({ ...requestFromRecording(sample(rec)), scan: { workers: 0 } });
      expect(r.verdict).not.toBeNull();
      expect(r.verdict!.function).toMatch(/^demo_conn_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[memdemo\]$/);
      expect(r.verdict!.cache).toBe('kmalloc-64');
      const site = r.callSites.find((c) => c.function.startsWith('demo_conn_add'))!;
      expect(site.unfreed).toBeGreaterThanOrEqual(exp.leakedWhileTracing - 11);
      expect(site.marked / site.unfreed).toBeGreaterThanOrEqual(0.9);
      for (const c of r.callSites) if (c !== site) expect(c.marked / c.unfreed).toBeLessThanOrEqual(0.05);
      expect(r.verdict!.similarObjects).toBeGreaterThanOrEqual(Math.ceil(0.95 * exp.leakedInDumpedPages));
    });
  }

  it('sanity-none: no verdict', async () => {
    const r = await analyze({ ...requestFromRecording(sample('sanity-none')), scan: { workers: 0 } });
    expect(r.verdict).toBeNull();
    expect(r.verdictReason).toMatch(/no outstanding allocation looks like/);
    expect(r.callSites.every((c) => c.marked === 0)).toBe(true);
  });
});
