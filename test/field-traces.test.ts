/**
 * Trace text as other kernels and tools write it (issue 11, class 1/2/4): options/fields, pre-4.15
 * `(null)`, trace-cmd report, perf script, 32-bit kernels, empty and unreadable traces. Lines are
 * written from the public formats (kernel/trace/trace_output.c print_event_fields, libtraceevent's kmem
 * plugin, perf script's default tracepoint layout) with the recorded kernel's addresses.
 */
import { describe, expect, it } from 'vitest';
import { looksLikeTrace, parseFtrace, traceWarnings } from '../src/trace/ftrace.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { errorOf, ROOT } from './helpers.js';

const fixture = (name: string) => readFileSync(join(ROOT, 'test/fixtures/field-formats', name), 'utf8');

const P = 'ffff8eadc3d02000';

describe('real trace formats', () => {
  it('options/fields: raw pointers and numbers with their decimal in parentheses', () => {
    const text = [
      '# tracer: nop',
      `            bash-1234    [001] .....  4582.696626: kmem_cache_alloc: call_site=0xffffffff92d10d97 (-1831793257) ptr=0x${P} (-107689771147264) bytes_req=0x1000 (4096) bytes_alloc=0x1000 (4096) gfp_flags=0xcc0 (3264) node=0xffffffff (-1) accounted=(0)`,
      `            bash-1234    [001] .....  4582.696653: kmem_cache_free: call_site=rcu_do_batch+0x3d1/0x14a0 (-1768960207) ptr=0x${P} (-107689771147264) name=names_cache`,
      `            bash-1234    [001] .....  4582.696700: kmalloc: call_site=0xffffffff92d0250b (-1831852789) ptr=0xffff9e0e8577f800 (-107689770747904) bytes_req=0x28 (40) bytes_alloc=0x40 (64) gfp_flags=0xcc0 (3264) node=0xffffffff (-1) accounted=(1)`,
    ].join('\n');
    const t = parseFtrace(text, 'fields.txt');
    expect(t.events).toHaveLength(3);
    expect(t.events[0]).toMatchObject({ kind: 'alloc', ptr: P, bytesReq: 4096, bytesAlloc: 4096, accounted: false, callSite: '0xffffffff92d10d97' });
    expect(t.events[1]).toMatchObject({ kind: 'free', ptr: P, callSite: 'rcu_do_batch+0x3d1/0x14a0', cacheName: 'names_cache' });
    expect(t.events[2]).toMatchObject({ bytesReq: 40, bytesAlloc: 64, accounted: true, ptr: 'ffff9e0e8577f800' });
    expect(t.stats.badLines).toBe(0);
  });

  it('hashed pointers: the advice names options/fields too', () => {
    const lines = Array.from({ length: 4 }, (_, i) => `  a-1  [000] .....  3.1${i}: kmalloc: call_site=f+0x1/0x10 ptr=00000000e70e10e${i} bytes_req=40 bytes_alloc=64`);
    expect(errorOf(() => parseFtrace(lines.join('\n'), 'h.txt')).message).toMatch(/no_hash_pointers.*options\/fields/);
  });

  it('pre-4.15 kfree(NULL) as ptr=(null), padded or not: counted, never unreadable', () => {
    const text = [
      `          <idle>-0     [000] ..s.  100.000001: kmalloc: call_site=ffffffff81234567 ptr=${P} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_ATOMIC`,
      '          <idle>-0     [000] ..s.  100.000002: kfree: call_site=ffffffff81234599 ptr=(null)',
      '          <idle>-0     [000] ..s.  100.000003: kfree: call_site=ffffffff81234599 ptr=          (null)',
      '     kworker/0:1-17    [000] ....  100.000004: kmem_cache_free: call_site=ffffffff81234599 ptr=(null)',
    ].join('\n');
    const t = parseFtrace(text, 'centos7.txt');
    expect(t.stats.badLines).toBe(0);
    expect(t.stats.nullFrees).toBe(3);
    expect(t.events).toHaveLength(1);
    expect(t.stats.byEvent.kfree).toBe(2);
    // A trace of only such frees has nothing to follow: said so, not "unreadable".
    const only = text.split('\n').slice(1).join('\n');
    expect(errorOf(() => parseFtrace(only, 'n.txt')).message).toMatch(/only frees of NULL \(3\)/);
  });

  it('trace-cmd report: preamble, kmem plugin prefix, lost-events note', () => {
    const text = [
      'version = 6',
      'CPU 1 is empty',
      'cpus=2',
      `          <idle>-0     [000]  5185.218134: kmalloc:              (tracing_buffers_open+0x2f) call_site=ffffffff81123d2f ptr=0x${P} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL`,
      'CPU:0 [12 EVENTS DROPPED]',
      `            bash-2041  [000]  5185.218200: kfree:                (free_it+0x11) call_site=ffffffff81123e00 ptr=0x${P}`,
    ].join('\n');
    expect(looksLikeTrace(text)).toBe(true);
    const t = parseFtrace(text, 'report.txt');
    expect(t.stats.producer).toBe('trace-cmd');
    expect(t.stats.badLines).toBe(0);
    expect(t.stats.lostEvents).toBe(12);
    expect(t.events.map((e) => [e.kind, e.ptr, e.pid, e.ts])).toEqual([['alloc', P, 0, 5185.218134], ['free', P, 2041, 5185.2182]]);
  });

  it('perf script: kmem:* tracepoints with -g frames', () => {
    const text = [
      `jbd2/dm-3-8  7666 [000]  4666.621521: kmem:kmalloc: call_site=ffffffff811a2458 ptr=0x${P} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_NOFS|GFP_ZERO`,
      '\tffffffff811a2458 __kmalloc+0x1f8 ([kernel.kallsyms])',
      '\tffffffffc0612c94 demo_conn_add+0x24 ([memdemo])',
      '',
      `     swapper     0/0     [001]  4666.700000: kmem:kfree: call_site=ffffffff811a2500 ptr=0x${P}`,
      '',
    ].join('\n');
    expect(looksLikeTrace(text)).toBe(true);
    const t = parseFtrace(text, 'perf.txt');
    expect(t.stats.producer).toBe('perf');
    expect(t.stats.badLines).toBe(0);
    expect(t.events[0]).toMatchObject({ kind: 'alloc', comm: 'jbd2/dm-3-8', pid: 7666, cpu: 0, bytesAlloc: 64, stack: ['__kmalloc+0x1f8', 'demo_conn_add+0x24'] });
    expect(t.events[1]).toMatchObject({ kind: 'free', pid: 0, cpu: 1 });
  });

  it('perf script of other events: the hint says which perf events are read', () => {
    const e = errorOf(() => parseFtrace('  perf 27356 [001] 26591.379808: cycles:  ffffffff811a2458 __kmalloc+0x1f8 ([kernel.kallsyms])\n', 'perf2.txt'));
    expect(e.message).toMatch(/perf script output is read for kmem:\* tracepoints/);
  });

  it('32-bit kernels: said so, not "hashed"', () => {
    const text = Array.from({ length: 3 }, (_, i) => `  insmod-88  [000] ....  12.00${i}: kmalloc: call_site=c10e4a1${i} ptr=c147dd2${i} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL`).join('\n');
    const e = errorOf(() => parseFtrace(text, 'i386.txt'));
    expect(e.code).toBe('E_TRACE');
    expect(e.message).toMatch(/32-bit kernels are not supported/);
    expect(e.message).not.toMatch(/hashed/);
  });
});

describe('no silent results from a trace', () => {
  it('two traces joined out of order: warned with the line where time goes back, never silently a wrong window', () => {
    const lines = gunzipSync(readFileSync(join(ROOT, 'samples/demo-kmalloc64/guest/trace.txt.gz'))).toString('utf8').split('\n');
    const joined = [...lines.slice(3000), ...lines.slice(0, 3000)].join('\n');
    const t = parseFtrace(joined, 'joined.txt');
    const back = lines.length - 3000 + 1;
    expect(traceWarnings(t)).toContain(`joined.txt: 1 lines have a timestamp over a second before the line above (first: line ${back}): traces joined or edited? The window is taken from the first line (${t.stats.firstTs}) to the last (${t.stats.lastTs})`);
    expect(parseFtrace(lines.join('\n'), 'whole.txt').stats.backwardTs).toBe(0);
  });

  it('trace_clock counter or x86-tsc (timestamps without a decimal point): the hint says which clocks print seconds', () => {
    const text = gunzipSync(readFileSync(join(ROOT, 'samples/demo-kmalloc64/guest/trace.txt.gz'))).toString('utf8').split('\n').slice(0, 400).join('\n');
    const tsc = text.replace(/ (\d+)\.(\d{6}):/g, ' $1$2123:');
    expect(tsc).not.toBe(text);
    const e = errorOf(() => parseFtrace(tsc, 'trace.txt'));
    expect(e.message).toMatch(/^no kmem trace events; first unreadable line: ".*" \(its timestamp has no decimal point: trace_clock was counter or x86-tsc; trace again with trace_clock local, global or mono, which print seconds\)\. Read are/);
    expect(errorOf(() => parseFtrace(text.replace(/\[(\d+)\]/g, '{$1}'), 'other.txt')).message).not.toMatch(/decimal point/);
  });


  it('an empty or comment-only trace holds no events: an error', () => {
    for (const text of ['', '# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:2\n#\n', '\n\n']) {
      const e = errorOf(() => parseFtrace(text, 'empty.txt'));
      expect(e.code).toBe('E_TRACE');
      expect(e.message).toMatch(/holds no events/);
      expect(e.context.file).toBe('empty.txt');
    }
  });

  it('a trace of other events only says which', () => {
    const e = errorOf(() => parseFtrace('  a-1  [000] ....  1.000001: sched_switch: prev_comm=a prev_pid=1\n', 's.txt'));
    expect(e.message).toMatch(/holds no kmem events, only 1 sched_switch/);
  });

  it('an unreadable mm_page_alloc line is counted and named, like a slab line', () => {
    const text = [
      '  insmod-88  [000] ....  12.000001: mm_page_alloc: page=0xffffe6b04443e200 pfn=0x110f88 order=1 migratetype=0 gfp_flags=GFP_KERNEL',
      '  insmod-88  [000] ....  nan: mm_page_alloc: page=0xffffe6b04443e280 pfn=0x110f8a order=1 migratetype=0 gfp_flags=GFP_KERNEL',
      '  insmod-88  [000] ....  12.000003: mm_page_alloc: page=0xffffe6b04443e300 pfn=zz order=1 migratetype=0 gfp_flags=GFP_KERNEL',
    ].join('\n');
    const t = parseFtrace(text, 'pages.txt');
    expect(t.events).toHaveLength(1);
    expect(t.stats.badLines).toBe(2);
    expect(t.stats.firstBadLine).toBe(2);
    expect(traceWarnings(t)[0]).toMatch(/^pages\.txt: 2 lines could not be read and were skipped \(first: line 2: /);
  });

  it('a bytes_alloc that is not a number makes the line unreadable, never size 0', () => {
    const text = [
      `  a-1  [000] ....  1.000001: kmalloc: call_site=f+0x1/0x10 ptr=${P} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL`,
      `  a-1  [000] ....  1.000002: kmalloc: call_site=f+0x1/0x10 ptr=ffff8eadc3d02040 bytes_req=40 bytes_alloc=6x4 gfp_flags=GFP_KERNEL`,
    ].join('\n');
    const t = parseFtrace(text, 'b.txt');
    expect(t.events.map((e) => e.bytesAlloc)).toEqual([64]);
    expect(t.stats.badLines).toBe(1);
    expect(t.stats.firstBadLine).toBe(2);
  });
});

describe('real outputs of another kernel (6.18.44, this project\'s build host)', () => {
  it('perf script -g of kmem:* tracepoints: every line read, (nil) frees counted, kernel frames kept', async () => {
    const t = parseFtrace(fixture('perf-script-6.18.txt'), 'perf-script.txt');
    expect(t.stats.producer).toBe('perf');
    expect(t.stats.badLines).toBe(0);
    expect(t.stats.nullFrees).toBe(1); // grep -c '(nil)'
    expect(t.stats.byEvent).toMatchObject({ kmalloc: 4, kfree: 4, kmem_cache_alloc: 4, kmem_cache_free: 3, mm_page_alloc: 3 });
    const alloc = t.events.find((e) => e.kind === 'alloc')!;
    expect(alloc.ptr).toMatch(/^ffff[0-9a-f]{12}$/);
    expect(alloc.stack!.length).toBeGreaterThan(2);
    expect(alloc.stack!.every((f) => !f.includes('/usr/'))).toBe(true);
    expect(t.events.find((e) => e.kind === 'page_alloc')!.pfn).toBeGreaterThan(0);
  });

  it('ftrace with options/fields: every line read, page events keyed by pfn (fields mode prints no page=)', async () => {
    const t = parseFtrace(fixture('ftrace-fields-6.18.txt'), 'fields.txt');
    expect(t.stats.badLines).toBe(0);
    expect(t.stats.nullFrees).toBe(3); // grep -c 'ptr=0x0 (0)'
    expect(t.events.filter((e) => e.kind === 'alloc').every((e) => /^ffff/.test(e.ptr) && e.bytesAlloc > 0)).toBe(true);
    const pages = t.events.filter((e) => e.kind === 'page_alloc');
    expect(pages).toHaveLength(6);
    expect(pages.every((e) => e.pfn !== null && e.migratetype !== null)).toBe(true);
  });
});
