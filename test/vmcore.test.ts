import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { defaultRequest, type AnalyzeRequest } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { openDump } from '../src/dump/open-dump.js';
import { MemleakError } from '../src/errors.js';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { findSlabCache } from '../src/kernel/slub.js';
import { openVmcore } from '../src/kernel/kernel.js';
import { summarizeCaches, walkCache } from '../src/kernel/slub.js';
import { buildKdump, elfPages, flatten } from './dump-builders.js';
import { ROOT, errorOf, sample, sampleText } from './helpers.js';

const DEMO = sample('demo-kmalloc64/vmcore.extract.gz');
const SANITY = sample('sanity-none/vmcore.extract.gz');
const exp = (rec: string) => JSON.parse(readFileSync(sample(`${rec}/expected.json`), 'utf8'));
const tmp = mkdtempSync(join(tmpdir(), 'sysak-vmcore-'));

function req(over: Partial<AnalyzeRequest>): AnalyzeRequest {
  return { ...defaultRequest(), scan: { workers: 0 }, ...over };
}


describe('vmcore extract of the demo recording (real Linux 6.1 memory)', () => {
  it('finds KASLR, symbols and types in the dump itself', () => {
    const v = openVmcore({ vmcore: DEMO, kallsyms: null, btf: null });
    try {
      expect(`0x${v.prog.kaslrOffset.toString(16)}`).toBe(exp('demo-kmalloc64').vmcoreExtract.kaslrOffset);
      expect(`0x${v.prog.bases!.pageOffsetBase.toString(16)}`).toBe(exp('demo-kmalloc64').pageOffsetBase);
      expect(v.typesSource).toMatch(/\.BTF at/);
      expect(v.dump.extractInfo?.cache).toBe('kmalloc-64');
      // Every symbol of the machine's /proc/kallsyms is in the table rebuilt from the dump.
      const file = Kallsyms.parse(sampleText('demo-kmalloc64/guest/kallsyms.txt.gz'), 'kallsyms');
      const key = (n: string, a: bigint) => `${n}@${a}`;
      for (const mod of [null, 'memdemo']) {
        const have = new Set<string>();
        for (const s of v.syms.symbolsOf(mod)) have.add(key(s.name, s.address));
        let n = 0;
        for (const s of file.symbolsOf(mod)) {
          n++;
          expect(have.has(key(s.name, s.address)), `${s.name} ${mod}`).toBe(true);
        }
        expect(n).toBeGreaterThan(mod ? 10 : 90000);
      }
      expect(v.syms.lookup(0xffffffffc0614b60n)?.name).toBe('demo_conn_ops');
    } finally {
      v.close();
    }
  });

  it('walks kmalloc-64 to the allocated count crash and drgn give', () => {
    const v = openVmcore({ vmcore: DEMO, kallsyms: null, btf: null });
    try {
      const w = walkCache(v, findSlabCache(v, 'kmalloc-64'));
      const e = exp('demo-kmalloc64').vmcoreExtract;
      expect(w.pfns.length).toBe(e.crashKmemS.slabs);
      expect(w.total).toBe(e.crashKmemS.total);
      expect(w.allocated).toBe(e.crashKmemS.allocated);
      expect(w.allocated).toBe(e.drgnAllocated);
      expect(w.cpuFreelistObjects).toBeGreaterThan(0);
      expect(w.warnings).toEqual([]);
      // The summary (kmem -s) agrees with the exact walk.
      const row = summarizeCaches(v).find((r) => r.cache.name === 'kmalloc-64')!;
      expect(row.allocated).toBe(e.crashKmemS.allocated);
    } finally {
      v.close();
    }
  });

  it('names demo_conn_add from the extract and the trace; every leaked object is in the top cluster', async () => {
    const r = await analyze(req({ vmcore: DEMO, trace: sample('demo-kmalloc64/guest/trace.txt.gz') }));
    expect(r.cache.name).toBe('kmalloc-64');
    expect(r.clusters[0].count).toBe(exp('demo-kmalloc64').vmcoreExtract.leakedObjects);
    expect(r.clusters[0].words?.[1].text).toBe('demo_conn_ops [memdemo]');
    expect(r.verdict?.function).toBe('demo_conn_add+0x24/0x140 [memdemo]');
    expect(r.verdict?.unfreed).toBe(401);
    expect(r.verdict?.marked).toBe(401);
    expect(r.unfreed.filter((u) => !u.readable)).toEqual([]);
    expect(r.source.dump?.excludedPages).toBe(0);
  });

  it('gives the same verdict with the machine\'s kallsyms, and refuses another boot\'s', async () => {
    const withFile = await analyze(req({ vmcore: DEMO, kallsyms: sample('demo-kmalloc64/guest/kallsyms.txt.gz'), trace: sample('demo-kmalloc64/guest/trace.txt.gz') }));
    expect(withFile.verdict?.function).toBe('demo_conn_add+0x24/0x140 [memdemo]');
    // Another boot: the same kernel with another KASLR slide.
    const other = sampleText('demo-kmalloc64/guest/kallsyms.txt.gz').split('\n').map((l) => {
      if (!/^[0-9a-f]{16} /.test(l) || l.startsWith('0000')) return l;
      return (BigInt('0x' + l.slice(0, 16)) + 0x200000n).toString(16).padStart(16, '0') + l.slice(16);
    }).join('\n');
    const f = join(tmp, 'other-boot.kallsyms');
    writeFileSync(f, other);
    await expect(analyze(req({ vmcore: DEMO, kallsyms: f }))).rejects.toThrow(/wrong kallsyms for this dump: _stext is 0xffffffffb1c00000 in the file but 0xffffffffb1a00000 in VMCOREINFO/);
  });

  it('finds no leak in the no-leak control', async () => {
    const r = await analyze(req({ vmcore: SANITY, geometry: { cache: 'kmalloc-64' }, trace: sample('sanity-none/guest/trace.txt.gz') }));
    expect(r.cache.allocated).toBe(exp('sanity-none').vmcoreExtract.crashKmemS.allocated);
    expect(r.verdict).toBeNull();
  });
});

describe('kdump-compressed readers on the same pages', () => {
  const { pages, vmcoreinfo } = elfPages(DEMO);
  const kd = buildKdump(pages, vmcoreinfo);
  const std = join(tmp, 'std.kdump');
  const flat = join(tmp, 'flat.kdump');
  writeFileSync(std, kd.bytes);
  writeFileSync(flat, flatten(kd.bytes));

  it.each([['standard', std], ['flattened', flat]])('%s kdump gives the same slab walk and clusters as the ELF extract', async (_n, file) => {
    const r = await analyze(req({ vmcore: file, geometry: { cache: 'kmalloc-64' } }));
    expect(r.source.dump?.format).toMatch(/^kdump-compressed/);
    expect(r.cache.allocated).toBe(158800);
    expect(r.clusters[0].count).toBe(150401);
  });

  it('reads every page byte-identical to the ELF extract', () => {
    const a = openDump(std);
    const b = openDump(DEMO);
    try {
      for (const p of pages.filter((_, i) => i % 97 === 0)) {
        expect(a.phys!.readPhys(p.pfn * 4096, 4096)).toEqual(b.phys!.readPhys(p.pfn * 4096, 4096));
      }
      expect(a.phys!.readPhys(0, 8)).toBeNull(); // pfn 0 is not in the extract: absent, not zeros
      expect(a.stats.excludedPages).toBe(1);
    } finally {
      a.close();
      b.close();
    }
  });

  it('rejects a truncated dump, naming the offset', () => {
    const f = join(tmp, 'trunc.kdump');
    writeFileSync(f, kd.bytes.subarray(0, kd.bytes.length - 1000));
    const e = errorOf(() => openDump(f));
    expect(e.code).toBe('E_FORMAT');
    expect(e.where()).toMatch(/trunc\.kdump at offset \d+ .*truncated dump/);
  });

  it('rejects a flattened stream without its end marker', () => {
    const f = join(tmp, 'noend.kdump');
    writeFileSync(f, flatten(kd.bytes, 65536, false));
    expect(errorOf(() => openDump(f)).where()).toMatch(/noend\.kdump at offset \d+ .*no end marker: truncated/);
  });

  it('rejects a corrupt bitmap, naming the offset', () => {
    const bad = kd.bytes.slice();
    bad[kd.bitmapOff + kd.bitmapLen] |= 1; // pfn 0 "dumped" but not "present"
    const f = join(tmp, 'bitmap.kdump');
    writeFileSync(f, bad);
    const e = errorOf(() => openDump(f));
    expect(e.context.offset).toBe(kd.bitmapOff + kd.bitmapLen);
    expect(e.message).toMatch(/pfn 0 is dumped but not present: corrupt bitmap/);
  });

  it('counts a page whose compressed data is damaged and names it; nothing becomes zeros', async () => {
    const bad = kd.bytes.slice();
    const dv = new DataView(bad.buffer);
    // Damage the data of the 5000th page (a kmalloc-64 slab page in this extract).
    const off = Number(dv.getBigInt64(kd.descOff + 5000 * 24, true));
    bad.fill(0xff, off, off + 16);
    const f = join(tmp, 'page.kdump');
    writeFileSync(f, bad);
    const r = await analyze(req({ vmcore: f, geometry: { cache: 'kmalloc-64' } }));
    expect(r.source.dump?.corruptPages).toBeGreaterThan(0);
    expect(r.warnings.join('\n')).toMatch(new RegExp(`corrupt \\(first: pfn ${pages[5000].pfn} at file offset ${off}: zlib data does not decompress`));
  });
});

describe('bad vmcore input', () => {
  it('a file with no known magic is refused at offset 0', () => {
    const f = join(tmp, 'junk.bin');
    writeFileSync(f, Buffer.from('this is not a dump at all, just text\n'.repeat(10)));
    expect(errorOf(() => openDump(f)).where()).toMatch(/junk\.bin at offset 0 .*not a vmcore: bytes 74 68 69 73/);
  });

  it('a truncated ELF extract names the segment that runs past the end', () => {
    const raw = gunzipSync(readFileSync(DEMO));
    const f = join(tmp, 'cut.core');
    writeFileSync(f, raw.subarray(0, raw.length >> 1));
    expect(errorOf(() => openDump(f)).where()).toMatch(/cut\.core at offset \d+ .*PT_LOAD \d+ .* runs past the end of the file .*truncated dump/);
  });
});

// The full recordings are outside the repository; these run where they exist.
const REC = join(ROOT, '..', 'shared', 'recordings', 'demo-kmalloc64');
const haveRec = existsSync(join(REC, 'vmcore.kdump'));
describe.skipIf(!haveRec)(`full demo recording (${haveRec ? REC : 'skipped: ../shared/recordings/demo-kmalloc64/vmcore.kdump not present'})`, () => {
  it('every ground-truth leak is allocated and every allocated object equals drgn\'s bytes', () => {
    const v = openVmcore({ vmcore: join(REC, 'vmcore.kdump'), kallsyms: null, btf: null });
    try {
      const manifest = JSON.parse(readFileSync(join(REC, 'manifest.json'), 'utf8'));
      expect(`0x${v.prog.kaslrOffset.toString(16)}`).toBe(manifest.kernel.kaslr_offset);
      const w = walkCache(v, findSlabCache(v, 'kmalloc-64'));
      const allocated = new Set<bigint>();
      for (let k = 0; k < w.pfns.length; k++) for (let i = 0; i < w.objects[k]; i++) {
        const a = w.slabBase(k) + BigInt(i * 64);
        if (!w.isFree(a)) allocated.add(a);
      }
      expect(allocated.size).toBe(manifest.slab_state_at_dump.drgn_allocated_objects);
      let leaks = 0;
      for (const line of readFileSync(join(REC, 'guest/ground_truth_objects.txt'), 'utf8').split('\n')) {
        if (!line.startsWith('leak ')) continue;
        leaks++;
        expect(allocated.has(BigInt(line.split(' ')[1]))).toBe(true);
      }
      expect(leaks).toBe(manifest.leak.leaked_objects);
      let compared = 0;
      for (const line of gunzipSync(readFileSync(join(REC, 'drgn/allocated_kmalloc-64.txt.gz'))).toString().split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const [addr, hexBytes] = line.split(' ');
        const a = BigInt('0x' + addr);
        expect(allocated.has(a)).toBe(true);
        const got = Buffer.from(v.prog.read(a, 64)!).toString('hex');
        if (got !== hexBytes) expect(`${addr} ${got}`).toBe(`${addr} ${hexBytes}`);
        compared++;
      }
      expect(compared).toBe(allocated.size);
    } finally {
      v.close();
    }
  });
});
