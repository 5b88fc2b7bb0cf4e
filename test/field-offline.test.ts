/**
 * Offline flows with inputs as users give them (issue 11): raw pages plus a trace mark like every
 * other memory source; crash's corrupted-slab warnings and unreadable trace lines reach the report.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { analyze } from '../src/slab/analyze.js';
import { requestFromRecording } from '../src/request.js';
import { elfPages } from './dump-builders.js';
import { ROOT, sample } from './helpers.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'sysak-offline-'));
const S = sample('demo-kmalloc64');

function sysak(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'memleak', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('--raw FILE --trace T', () => {
  it('marks the unfreed allocations that lie in the file, as the vmcore analysis of the same pages does', async () => {
    const full = await analyze({ ...requestFromRecording(S), scan: { workers: 0 } }, null);
    const pob = BigInt(full.source.dump!.pageOffsetBase!);
    const leaks = full.unfreed.filter((u) => u.function.startsWith('demo_conn_add')).map((u) => BigInt(u.ptr));
    // The run of contiguous pages of the extract that holds the most leaked objects, as raw bytes.
    const { pages } = elfPages(join(S, 'vmcore.extract.gz'));
    pages.sort((a, b) => a.pfn - b.pfn);
    let best: typeof pages = [];
    let bestN = 0;
    for (let i = 0, j = 0; i < pages.length; i = j) {
      for (j = i + 1; j < pages.length && pages[j].pfn === pages[j - 1].pfn + 1; j++);
      const lo = pob + BigInt(pages[i].pfn * 4096);
      const n = leaks.filter((p) => p >= lo && p < lo + BigInt((j - i) * 4096)).length;
      if (n > bestN) [best, bestN] = [pages.slice(i, j), n];
    }
    expect(bestN).toBeGreaterThanOrEqual(20);
    const base = pob + BigInt(best[0].pfn * 4096);
    const file = join(tmp, 'pages.bin');
    const bytes = new Uint8Array(best.length * 4096);
    best.forEach((p, i) => bytes.set(p.data, i * 4096));
    writeFileSync(file, bytes);
    const r = sysak('--raw', file, '--base', base.toString(16), '--object-size', '64', '--trace', join(S, 'guest/trace.txt.gz'), '--kallsyms', join(S, 'guest/kallsyms.txt.gz'), '--json');
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    const inside = (u: { ptr: string }) => BigInt(u.ptr) >= base && BigInt(u.ptr) < base + BigInt(bytes.length);
    const inFile = j.unfreed.filter(inside);
    expect(inFile.length).toBeGreaterThanOrEqual(bestN);
    expect(inFile.every((u: { readable: boolean }) => u.readable)).toBe(true);
    const marked = inFile.filter((u: { marked: boolean }) => u.marked);
    const markedFromDump = full.unfreed.filter((u) => inside(u) && u.marked).map((u) => u.ptr);
    // Every object the dump analysis marks is marked from the raw pages too. Raw pages carry no free
    // state: a slot the dump's freelists show free again but still holding a demo_conn's bytes is
    // marked as well (the README's limit of memory without free markers); only a few such.
    const rawMarked = marked.map((u: { ptr: string }) => u.ptr);
    expect(rawMarked).toEqual(expect.arrayContaining(markedFromDump));
    expect(markedFromDump.length).toBeGreaterThanOrEqual(bestN);
    expect(rawMarked.length - markedFromDump.length).toBeLessThanOrEqual(Math.ceil(0.05 * rawMarked.length));
    expect(j.source.memory).toMatch(/streamed.*read back from the file/);
  });
});

describe('warnings that reach the report', () => {
  it('crash kmem -S with crash\'s corrupted-slab lines: counted and named in the warnings', () => {
    const kmem = readFileSync(join(S, 'crash/kmem_S_kmalloc-64.txt'), 'utf8').split('\n');
    kmem.splice(7, 0, 'kmem: kmalloc-64: slab: fffffb6ec00f4040 invalid freepointer: a6086ac099f0c5a4');
    const f = join(tmp, 'kmem-corrupt.txt');
    writeFileSync(f, kmem.join('\n'));
    const r = sysak('--rd', join(S, 'crash/rd64_pages.txt.gz'), '--kmem', f, '--kallsyms', join(S, 'guest/kallsyms.txt.gz'), '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const w: string[] = JSON.parse(r.out).warnings;
    expect(w.some((x) => /kmem-corrupt\.txt: 1 lines of crash's own warnings about corrupted slabs were skipped \(first, line 8: .*invalid freepointer/.test(x))).toBe(true);
  });

  it('crash rd with crash\'s own errors for pages it could not read: counted and named in the warnings', () => {
    const rd = gunzipSync(readFileSync(join(S, 'crash/rd64_pages.txt.gz'))).toString().split('\n');
    rd.splice(1000, 0, 'rd: page excluded: kernel virtual address: ffff8eadc3d01000  type: "64-bit KVADDR"');
    const f = join(tmp, 'rd-excluded.txt');
    writeFileSync(f, rd.join('\n'));
    const r = sysak('--rd', f, '--kmem', join(S, 'crash/kmem_S_kmalloc-64.txt'), '--kallsyms', join(S, 'guest/kallsyms.txt.gz'), '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).warnings).toContain(`${f}: 1 lines of crash's own errors were skipped (first, line 1001: "rd: page excluded: kernel virtual address: ffff8eadc3d01000  type: \\"64-bit KVADDR\\""): the memory they name is not in the file`);
  });

  it('kmem text without the cache to analyse: kmem -s of many caches wants -n, a missing cache is named with its file', () => {
    const kmemS = join(S, 'crash/kmem_S_kmalloc-64.txt');
    const rd = ['--rd', join(S, 'crash/rd64_pages.txt.gz')];
    // Before: "object size of kmalloc-128 unknown: give --kmem (crash kmem -S), ..." with --kmem given.
    let r = sysak(...rd, '--kmem', kmemS, '-n', 'kmalloc-128');
    expect([r.code, r.err]).toEqual([4, `sysak memleak: ${kmemS}: no cache kmalloc-128 in its 1 cache (kmalloc-64): give the kmem -S of kmalloc-128, or --object-size\n`]);
    // kmem -s: the table of every cache (here three rows of the real one).
    const table = readFileSync(kmemS, 'utf8').split('\n').slice(0, 2);
    const f = join(tmp, 'kmem_s.txt');
    writeFileSync(f, [...table, table[1].replace('kmalloc-64', 'dentry').replace(/^ffff8eadc1042500/, 'ffff8eadc1042600'), table[1].replace(' 64 ', ' 32 ').replace('kmalloc-64', 'kmalloc-32').replace(/^ffff8eadc1042500/, 'ffff8eadc1042700'), ''].join('\n'));
    r = sysak(...rd, '--kmem', f);
    expect([r.code, r.err]).toEqual([2, `sysak memleak: ${f}: lists 3 caches (kmem -s): name the one to analyse with -n (the most bytes: kmalloc-64, dentry, kmalloc-32)\n`]);
    r = sysak(...rd, '--kmem', f, '-n', 'kmalloc-64', '--json');
    expect(r.code).toBe(0);
  });

  it('an unreadable mm_page_alloc line is named in the page report\'s warnings', () => {
    const trace = gunzipSync(readFileSync(sample('vmleak-page/guest/trace.txt.gz'))).toString().split('\n');
    const at = trace.findIndex((l) => l.includes('mm_page_alloc:'));
    trace[at] = trace[at].replace(/\d+\.\d+:/, 'nan:');
    const f = join(tmp, 'page-trace.txt');
    writeFileSync(f, trace.join('\n'));
    const r = sysak('--from', sample('vmleak-page'), '--trace', f, '-t', 'page', '--json');
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    expect(j.type).toBe('page');
    expect(j.warnings).toContainEqual(expect.stringMatching(new RegExp(`page-trace\\.txt: 1 lines could not be read and were skipped \\(first: line ${at + 1}: `)));
  });
});
