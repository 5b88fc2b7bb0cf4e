/**
 * The parts of live mode that do not need root: the /proc check on the recordings' snapshots, the
 * ring-buffer page decoder and the binary-event -> text writer on the real 6.1 event formats.
 * The end-to-end live run is in live.test.ts (harness).
 */
import { describe, expect, it } from 'vitest';
import { checkLeak } from '../src/check/leak.js';
import { snapshotFromTexts } from '../src/check/proc.js';
import { suspectCache } from '../src/check/suspect.js';
import { parseEventFormat, parseHeaderPage } from '../src/live/event-format.js';
import { decodePage } from '../src/live/ring-buffer.js';
import { EventTextWriter } from '../src/live/trace-text.js';
import { parseFtrace } from '../src/trace/ftrace.js';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { sampleText } from './helpers.js';

function snap(rec: string, when: 'before' | 'after') {
  return snapshotFromTexts(
    sampleText(`${rec}/guest/meminfo.${when}`), sampleText(`${rec}/guest/slabinfo.${when}`), sampleText(`${rec}/guest/vmallocinfo.${when}`),
    { meminfo: 'meminfo', slabinfo: 'slabinfo' },
  );
}

describe('quick check (/proc snapshots of the recordings)', () => {
  it('demo: slab grew most, kmalloc-64 is the suspect; the absolute rule alone would see nothing on 768 MiB', () => {
    const r = checkLeak(snap('demo-kmalloc64', 'before'), snap('demo-kmalloc64', 'after'));
    expect(r.leak).toBe('slab');
    const slab = r.kinds.find((k) => k.kind === 'slab')!;
    expect(slab.growth).toBeGreaterThan(9 * 1024 * 1024); // 150401 leaked x 64 B
    expect(slab.why).toMatch(/grew by/);
    expect(checkLeak(snap('demo-kmalloc64', 'after'), null).leak).toBeNull();
    const s = suspectCache(r.caches, () => false)!;
    expect(s.name).toBe('kmalloc-64');
    expect(s.growthObjs).toBeGreaterThan(150000);
  });

  it('sanity: slab does not grow (the page growth there is the harness\'s own 2 x 8 MiB trace buffer)', () => {
    const r = checkLeak(snap('sanity-none', 'before'), snap('sanity-none', 'after'));
    expect(r.kinds.find((k) => k.kind === 'slab')!.leaking).toBe(false);
    expect(r.leak).not.toBe('slab');
  });
});

const FORMATS = sampleText('demo-kmalloc64/guest/trace_event_formats.txt.gz')
  .split(/^== /m).filter(Boolean).map((block) => {
    const [head, ...rest] = block.split('\n');
    const [system] = head.trim().split('/');
    return parseEventFormat(rest.join('\n'), system, head);
  });
const fmt = (n: string) => FORMATS.find((f) => f.name === n)!;
// events/header_page of 6.1 x86_64
const HEADER_PAGE = parseHeaderPage(
  '\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n',
  'header_page',
);

/** A ring-buffer page as the kernel writes it: small events (type_len = words), one time extend. */
function page(records: { delta: number; body: Uint8Array }[], missed = 0): Uint8Array {
  const p = new Uint8Array(4096);
  const dv = new DataView(p.buffer);
  dv.setBigUint64(0, 1_000_000_000n, true); // page timestamp: 1 s
  let pos = 16;
  for (const r of records) {
    if (r.delta >= 1 << 27) {
      dv.setUint32(pos, 30 | ((r.delta & ((1 << 27) - 1)) << 5), true);
      dv.setUint32(pos + 4, Math.floor(r.delta / 2 ** 27), true);
      pos += 8;
      r.delta = 0;
    }
    const words = Math.ceil(r.body.length / 4);
    dv.setUint32(pos, words | (r.delta << 5), true);
    p.set(r.body, pos + 4);
    pos += 4 + words * 4;
  }
  const len = pos - 16;
  let commit = len;
  if (missed) {
    dv.setBigUint64(pos, BigInt(missed), true);
    commit += 2 ** 30 + 2 ** 31; // RB_MISSED_STORED | RB_MISSED_EVENTS
  }
  dv.setBigUint64(8, BigInt(commit), true);
  return p;
}

function body(name: string, values: Record<string, bigint | number>): Uint8Array {
  const f = fmt(name);
  const size = Math.max(...[...f.fields.values()].map((x) => x.offset + x.size));
  const b = new Uint8Array(Math.ceil(size / 4) * 4);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, f.id, true);
  for (const [k, v] of Object.entries(values)) {
    const fl = f.fields.get(k)!;
    if (fl.size === 8) dv.setBigUint64(fl.offset, BigInt(v), true);
    else if (fl.size === 4) dv.setUint32(fl.offset, Number(v), true);
  }
  return b;
}

describe('binary ring buffer -> text trace', () => {
  const ks = Kallsyms.parse(sampleText('demo-kmalloc64/guest/kallsyms.txt.gz'), 'kallsyms');
  const site = ks.addressOf('demo_conn_add', 'memdemo')! + 0x24n;
  const ptr = 0xffff8eadc3350980n; // what the text trace would show hashed without no_hash_pointers

  it('decodes events, time deltas, time extends and a stored missed-events count', () => {
    const p = page([
      { delta: 0, body: body('kmalloc', { common_pid: 1234, call_site: site, ptr, bytes_req: 40, bytes_alloc: 64, gfp_flags: 0xcc0, node: -1 >>> 0 }) },
      { delta: 5000, body: body('kfree', { common_pid: 1234, call_site: site, ptr }) },
      { delta: 3 * 2 ** 27 + 7, body: body('kfree', { common_pid: 1, call_site: site, ptr: ptr + 64n }) },
    ], 17);
    const d = decodePage(p, HEADER_PAGE);
    expect(d.events.map((e) => e.ts)).toEqual([1_000_000_000n, 1_000_005_000n, 1_000_005_000n + 3n * 2n ** 27n + 7n]);
    expect(d.missed).toBe(17);
    expect(d.events[0].data.getUint16(0, true)).toBe(fmt('kmalloc').id);
  });

  it('writes lines the offline parser reads back with raw pointers and %pS call sites', () => {
    const p = page([
      { delta: 0, body: body('kmalloc', { common_pid: 0, call_site: site, ptr, bytes_req: 40, bytes_alloc: 64, gfp_flags: 0xcc0, node: 0 }) },
      { delta: 1000, body: body('kmem_cache_alloc', { common_pid: 0, call_site: site, ptr: ptr + 64n, bytes_req: 64, bytes_alloc: 64, gfp_flags: 0xcc0, node: 0 }) },
      { delta: 1000, body: body('kfree', { common_pid: 0, call_site: site, ptr }) },
    ]);
    const w = new EventTextWriter(FORMATS, ks);
    const lines = decodePage(p, HEADER_PAGE).events.map((e) => w.line(1, e)!);
    expect(lines[0]).toBe('<idle>-0 [001] ..... 1.000000: kmalloc: call_site=demo_conn_add+0x24/0x140 [memdemo] ptr=ffff8eadc3350980 bytes_req=40 bytes_alloc=64 gfp_flags=0xcc0 node=0');
    const t = parseFtrace(lines.join('\n') + '\n', 'live', ks);
    expect(t.stats.badLines).toBe(0);
    expect(t.events.map((e) => [e.kind, e.ptr, e.callSite])).toEqual([
      ['alloc', 'ffff8eadc3350980', 'demo_conn_add+0x24/0x140 [memdemo]'],
      ['alloc', 'ffff8eadc33509c0', 'demo_conn_add+0x24/0x140 [memdemo]'],
      ['free', 'ffff8eadc3350980', 'demo_conn_add+0x24/0x140 [memdemo]'],
    ]);
  });
});

describe('steady growth over one-second samples', () => {
  it('a slow leak that rises every second counts; churn and one step do not', async () => {
    const { steadyGrowth } = await import('../src/check/leak.js');
    const KiB = 1024;
    // 240 KiB/s of vmalloc for 20 s (the vmleak scenario's slow leak): 4.7 MiB, under the 0.5%-of-RAM rule.
    const leak = Array.from({ length: 21 }, (_, i) => 40 * 1024 * KiB + i * 240 * KiB);
    expect(steadyGrowth(leak)?.growth).toBeGreaterThan(3 * 1024 * KiB); // medians of the first and last thirds
    expect(steadyGrowth(leak)?.tau).toBe(1);
    // Churn: the same net growth, but up and down.
    const churn = leak.map((_, i) => 40 * 1024 * KiB + (i % 2 ? 3 * 1024 * KiB : -3 * 1024 * KiB));
    expect(steadyGrowth(churn)).toBeNull();
    // One big allocation: a single step among flat samples is not a leak.
    const step = Array.from({ length: 21 }, (_, i) => (i < 10 ? 0 : 8 * 1024 * KiB));
    expect(steadyGrowth(step)).toBeNull();
    expect(steadyGrowth(leak.slice(0, 3))).toBeNull(); // too few samples
    // A leak under noise (per-CPU page lists return pages in bursts of up to 1.5 MiB): still a trend.
    let r = 11;
    const noisy = leak.map((v) => {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      return v + ((r % 1536) - 768) * KiB;
    });
    expect(steadyGrowth(noisy)).not.toBeNull();
  });
});
