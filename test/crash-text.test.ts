import { describe, expect, it } from 'vitest';
import { SparseMemory } from '../src/util/memory.js';
import { parseCrashRd } from '../src/input/crash-rd.js';
import { parseCrashKmem } from '../src/input/crash-kmem.js';
import { parseSlabinfo } from '../src/input/slabinfo.js';
import { resolveGeometry } from '../src/slab/crash-text.js';
import { MemleakError } from '../src/errors.js';
import { errorOf, sampleText } from './helpers.js';


describe('crash rd', () => {
  it('reads rd -64 lines, ASCII column cut off by position even when it holds spaces and hex', () => {
    const mem = new SparseMemory('t');
    const text = [
      'ffff8eadc3d02000:  6d656d64656d6f31 ffffffffc0614b60   1omedmem`Ka.....',
      'ffff8eadc3d02010:  2020202061626364 dead000000000122   dcba    ".......',
      'ffff8eadc3d02020:  0000c0de00024a74                    tJ......',
    ].join('\n');
    const st = parseCrashRd(text, 't', mem);
    expect(st.words).toBe(5);
    const b = mem.read(0xffff8eadc3d02000n, 40)!;
    const dv = new DataView(b.buffer);
    expect(dv.getBigUint64(8, true)).toBe(0xffffffffc0614b60n);
    expect(dv.getBigUint64(16, true)).toBe(0x2020202061626364n);
    expect(dv.getBigUint64(32, true)).toBe(0x0000c0de00024a74n);
    expect(mem.read(0xffff8eadc3d02028n, 8)).toBeNull(); // never dumped: not zeros
  });

  it('reads the recorded rd -64 and rd -S pages (200 pages of 4 KiB)', () => {
    const a = new SparseMemory('a');
    expect(parseCrashRd(sampleText('demo-kmalloc64/crash/rd64_pages.txt.gz'), 'rd64', a).words).toBe(200 * 512);
    const s = new SparseMemory('s');
    const st = parseCrashRd(sampleText('demo-kmalloc64/crash/rdS_pages.txt.gz'), 'rdS', s);
    expect(st.words).toBe(200 * 512);
    expect(st.symbolicWords).toBeGreaterThan(9000); // demo_conn_ops in every leaked object
    expect(st.slabPointerWords).toBeGreaterThan(1000);
    expect([...s.symbolic.values()]).toContain('demo_conn_ops');
    expect([...s.symbolic.values()]).toContain('[kmalloc-64]');
  });

  it('names file and line of a truncated line, garbage and other widths', () => {
    const ok = 'ffff8eadc3d02000:  6d656d64656d6f31 ffffffffc0614b60   1omedmem`Ka.....\n';
    let e = errorOf(() => parseCrashRd(ok + 'ffff8eadc3d02290:  ffff8eadc3d0\n', 'trunc.txt', new SparseMemory('x')));
    expect(e.where()).toMatch(/^trunc\.txt:2: truncated rd word/);
    e = errorOf(() => parseCrashRd(ok + 'hello world\n', 'g.txt', new SparseMemory('x')));
    expect(e.where()).toMatch(/^g\.txt:2: not a crash rd line/);
    e = errorOf(() => parseCrashRd('ffff8eadc3d02000:  656d6f31 6d656d64 c0614b60 ffffffff   1omedmem`Ka.....\n', 'w.txt', new SparseMemory('x')));
    expect(e.message).toMatch(/rd -32 output is not supported/);
    e = errorOf(() => parseCrashRd('ffff8eadc3d02000:  6d656d64656d6f31 zzzzzzzzzzzzzzzz\n', 'z.txt', new SparseMemory('x')));
    expect(e.where()).toMatch(/^z\.txt:1: not a hex word/);
    // Cut inside the ASCII column (the file ends mid-line): the words are whole, the line is not.
    e = errorOf(() => parseCrashRd(ok + 'ffff8eadc3d02010:  6d656d64656d6f31 ffffffffc0614b60   1omedmem`', 'cut.txt', new SparseMemory('x')));
    expect(e.where()).toMatch(/^cut\.txt:2: the ASCII column ends after 9 of 16 characters: truncated line/);
    // One flipped hex digit disagrees with the ASCII crash printed from the real bytes.
    e = errorOf(() => parseCrashRd('ffff8eadc3d02000:  6d656d64656d6f32 ffffffffc0614b60   1omedmem`Ka.....\n', 'flip.txt', new SparseMemory('x')));
    expect(e.where()).toMatch(/^flip\.txt:1: the ASCII column "1omedmem`Ka\.\.\.\.\." does not match the words/);
    e = errorOf(() => parseCrashRd(ok + 'ffff8eadc3d02010:  dead000000000100 ffffffffc06g4b60\n', 'h.txt', new SparseMemory('x')));
    expect(e.where()).toMatch(/^h\.txt:2: not a hex word: "ffffffffc06g4b60"/);
  });
});

describe('crash kmem', () => {
  it('reads geometry, slabs and object markers of kmem -S', () => {
    const k = parseCrashKmem(sampleText('demo-kmalloc64/crash/kmem_S_kmalloc-64.txt'), 'kmem');
    expect(k.caches[0]).toMatchObject({ name: 'kmalloc-64', objectSize: 64, allocated: 158800, total: 158912, slabs: 2483, slabSize: 4096 });
    expect(k.stride).toBe(64);
    expect(k.fullSlabsTracked).toBe(false);
    const free = [...k.objects.values()].filter((v) => !v).length;
    const alloc = [...k.objects.values()].filter((v) => v).length;
    // Every listed slab's objects are listed, split as the slab header says.
    const sum = k.slabs.reduce((s, x) => ({ a: s.a + x.allocated, f: s.f + x.free }), { a: 0, f: 0 });
    expect(alloc).toBe(sum.a);
    expect(free).toBe(sum.f);
    expect(k.objects.get(0xffff8eadc3d010c0n)).toBe(false);
    expect(k.objects.get(0xffff8eadc3d01000n)).toBe(true);
  });

  it('accepts the NAME-second layout of crash < 7.2.4', () => {
    const t = 'CACHE            NAME                 OBJSIZE  ALLOCATED     TOTAL  SLABS  SSIZE\nffff8eadc1042500 kmalloc-64                64     158800    158912   2483     4k\n';
    expect(parseCrashKmem(t, 'old').caches[0]).toMatchObject({ name: 'kmalloc-64', objectSize: 64, total: 158912, slabSize: 4096 });
  });

  it('refuses text without the cache table', () => {
    expect(() => parseCrashKmem('CPU 0 SLAB:\n', 'x')).toThrowError(/not crash kmem/);
  });
});

describe('geometry', () => {
  const slabinfo = parseSlabinfo(sampleText('demo-kmalloc64/guest/slabinfo.after'), 'slabinfo');
  it('reads /proc/slabinfo', () => {
    expect(slabinfo.get('kmalloc-64')).toMatchObject({ objectSize: 64, objsPerSlab: 64, pagesPerSlab: 1, numObjs: 158912 });
  });
  it('takes geometry from slabinfo and refuses sizes that do not divide the slab', () => {
    expect(resolveGeometry({ cache: 'kmalloc-192' }, null, slabinfo)).toMatchObject({ stride: 192, objsPerSlab: 21, slabSize: 4096 });
    expect(() => resolveGeometry({ objectSize: 48 }, null, null)).toThrowError(/does not divide the slab size 4096 \(16 bytes left over\)/);
    expect(resolveGeometry({ objectSize: 48, objectsPerSlab: 85 }, null, null)).toMatchObject({ objsPerSlab: 85 });
    expect(() => resolveGeometry({ objectSize: 60 }, null, null)).toThrowError(/multiple of 8/);
  });
});
