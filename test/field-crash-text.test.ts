/**
 * crash text as people publish it (issue 11): kmem -S of corrupted slabs with crash's own warnings in
 * between, files cut while being written, 32-bit kernels, unaligned rd lines.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseCrashKmem } from '../src/input/crash-kmem.js';
import { parseCrashRd } from '../src/input/crash-rd.js';
import { parseSlabinfo } from '../src/input/slabinfo.js';
import { sniffText } from '../src/input/files.js';
import { SparseMemory } from '../src/util/memory.js';
import { join } from 'node:path';
import { ROOT, errorOf, sample, sampleText } from './helpers.js';

const KMEM = readFileSync(sample('demo-kmalloc64/crash/kmem_S_kmalloc-64.txt'), 'utf8');

describe('slab geometry numbers in crash kmem and /proc/slabinfo are checked on their line', () => {
  const SLABINFO = readFileSync(sample('demo-kmalloc64/guest/slabinfo.after'), 'utf8');
  const at = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split('\n').length;

  it('slabinfo: a count past 2^53, a zero object size, a slab of 3 pages', () => {
    const row = SLABINFO.split('\n').find((l) => l.startsWith('kmalloc-64 '))!;
    const line = at(SLABINFO, row);
    const cases: [string, string][] = [
      [row.replace(/^kmalloc-64\s+\d+/, 'kmalloc-64 99999999999999999999'), 'slabinfo field 1 is not a number: 99999999999999999999'],
      [row.replace(/ 64 +64 +1 :/, ' 0 64 1 :'), 'impossible slab geometry for kmalloc-64: objsize 0, objperslab 64, pagesperslab 1: damaged line'],
      [row.replace(/ 64 +64 +1 :/, ' 64 64 3 :'), 'impossible slab geometry for kmalloc-64: objsize 64, objperslab 64, pagesperslab 3: damaged line'],
      [row.replace(/ 64 +64 +1 :/, ' 64 65 1 :'), 'impossible slab geometry for kmalloc-64: objsize 64, objperslab 65, pagesperslab 1: damaged line'],
    ];
    for (const [to, msg] of cases) {
      expect(to).not.toBe(row);
      // Before: accepted, and "object size 0 is not a positive multiple of 8" with no file, or 1e20 allocated objects.
      expect(errorOf(() => parseSlabinfo(SLABINFO.replace(row, to), 'slabinfo')).where()).toBe(`slabinfo:${line}: ${msg}`);
    }
  });

  it('kmem: SSIZE 0k or of 3 pages, OBJSIZE 0 or larger than the slab', () => {
    const row = KMEM.split('\n').find((l) => l.startsWith('ffff8eadc1042500'))!;
    const line = at(KMEM, row);
    for (const [objsize, ssize] of [['64', '0k'], ['64', '12k'], ['0', '4k'], ['8192', '4k']]) {
      const to = row.replace(/ +64 +(158800 +158912 +2483) +4k/, (_m, mid) => `  ${objsize}     ${mid}  ${ssize}`);
      expect(to).not.toBe(row);
      expect(errorOf(() => parseCrashKmem(KMEM.replace(row, to), 'kmem.txt')).where()).toBe(`kmem.txt:${line}: impossible slab geometry for kmalloc-64: OBJSIZE ${objsize}, SSIZE ${ssize}: damaged line`);
    }
  });
});

describe('crash kmem -S', () => {
  it('skips, counts and names crash\'s own warnings about corrupted slabs', () => {
    const lines = KMEM.split('\n');
    const warn = (slab: string) => `kmem: kmalloc-64: slab: ${slab} invalid freepointer: a6086ac099f0c5a4`;
    lines.splice(7, 0, warn('fffffb6ec00f4040'));
    lines.splice(20, 0, warn('fffffb6ec00f4040'), 'kmem: kmalloc-64: partial list slab: fffffb6ec00f4080 invalid page.inuse: -1');
    const k = parseCrashKmem(lines.join('\n'), 'corrupt.txt');
    const clean = parseCrashKmem(KMEM, 'clean.txt');
    expect(k.crashWarnings).toEqual({ count: 3, first: warn('fffffb6ec00f4040'), firstLine: 8 });
    expect(k.objects.size).toBe(clean.objects.size);
    expect(k.slabs).toEqual(clean.slabs);
    expect(clean.crashWarnings.count).toBe(0);
  });

  it('a node partial list of slab rows with no objects between them (real crash output, churn-rcu) is read', () => {
    const f = join(ROOT, 'test/fixtures/field-formats/kmem_S-churn-rcu.txt');
    // Before: "kmem_S-churn-rcu.txt:351: unexpected line in crash kmem output" at the second row.
    const k = parseCrashKmem(readFileSync(f, 'utf8'), f);
    const node = ['ffff8941c2c8d000', 'ffff8941c2c8a000', 'ffff8941c2c8c000', 'ffff8941c3fee000'].map((m) => k.slabs.find((s) => s.memory === BigInt('0x' + m)));
    expect(node.map((s) => s && [s.total, s.allocated, s.free])).toEqual([[64, 63, 1], [64, 62, 2], [64, 50, 14], [64, 60, 4]]);
    expect(k.caches[0]).toMatchObject({ name: 'kmalloc-64', objectSize: 64 });
  });

  it('a file cut inside its cache table is truncated, not a cache called "kmall"', () => {
    for (const cut of [KMEM.indexOf('kmalloc-64') + 5, KMEM.indexOf('NAME') + 2, KMEM.indexOf('ALLOC') + 3]) {
      const e = errorOf(() => parseCrashKmem(KMEM.slice(0, cut), 'cut.txt'));
      expect(e.code).toBe('E_FORMAT');
      expect(e.message).toMatch(/truncated|cut or not crash kmem/);
    }
    // Cut inside a later line: named as truncated at that line.
    const at = KMEM.indexOf('ffff8eadc3d01100');
    const e = errorOf(() => parseCrashKmem(KMEM.slice(0, at + 6), 'cut2.txt'));
    expect(e.message).toMatch(/ends inside a line.*truncated/);
    expect(e.context.line).toBe(KMEM.slice(0, at).split('\n').length);
  });

  it('32-bit crash output says 32-bit kernels are not supported', () => {
    const text = [
      'CACHE    OBJSIZE  ALLOCATED     TOTAL  SLABS  SSIZE  NAME',
      'f5c01e00      64       2920      3072     48     4k  kmalloc-64',
      'CPU 0 SLAB:',
      '  SLAB      MEMORY    NODE  TOTAL  ALLOCATED  FREE',
      '  f7e7a560  f3d2b000     0     64         30    34',
      '  FREE / [ALLOCATED]',
      '  [f3d2b000]',
    ].join('\n') + '\n';
    const e = errorOf(() => parseCrashKmem(text, 'i386-kmem.txt'));
    expect(e.message).toMatch(/32-bit kernels are not supported/);
    expect(e.context.line).toBe(2);
  });
});

describe('crash rd', () => {
  it('crash\'s own errors between rd lines (a page it could not read) are skipped and counted, the other pages read', () => {
    const rd = sampleText('demo-kmalloc64/crash/rd64_pages.txt.gz').split('\n');
    const excluded = (a: string) => `rd: page excluded: kernel virtual address: ${a}  type: "64-bit KVADDR"`;
    const lines = [excluded('ffff8eadc3350000'), ...rd.slice(0, 1000), excluded('ffff8eadc3d01000'), ...rd.slice(1000)];
    const mem = new SparseMemory('x');
    // Before: "not a format sysak memleak reads" (the first line), or "not a crash rd line" at line 1002.
    const st = parseCrashRd(lines.join('\n'), 'rd.txt', mem);
    const clean = new SparseMemory('y');
    const want = parseCrashRd(rd.join('\n'), 'clean.txt', clean);
    expect(st.crashErrors).toEqual({ count: 2, first: excluded('ffff8eadc3350000'), firstLine: 1 });
    expect([st.lines, st.words]).toEqual([want.lines, want.words]);
    expect(mem.pageAddresses()).toEqual(clean.pageAddresses());
    expect(sniffText(lines.join('\n'))).toBe('rd');
  });

  it('32-bit rd output says 32-bit kernels are not supported', () => {
    const e = errorOf(() => parseCrashRd('c147dd20:  00000000 c1234567 f3d2b040 00000001   ....gE#.@.......\n', 'i386-rd.txt', new SparseMemory('x')));
    expect(e.message).toMatch(/32-bit kernels are not supported/);
  });

  it('an unaligned address is a damaged line, not advice to use rd -64', () => {
    const e = errorOf(() => parseCrashRd('ffff8eadc3d02004:  6d656d64656d6f31 ffffffffc0614b60   1omedmem`Ka.....\n', 'u.txt', new SparseMemory('x')));
    expect(e.message).toMatch(/not 8-byte aligned.*edited or damaged/);
    expect(e.message).not.toMatch(/use rd -64\)/);
    expect(e.context.line).toBe(1);
  });
});
