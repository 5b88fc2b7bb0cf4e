/**
 * kallsyms tables found in the kernel image of a dump (kernel/kallsyms-image.ts), for kernels whose
 * VMCOREINFO does not export them (before 6.0), checked against the guest's own /proc/kallsyms: every
 * kernel symbol (not 'A' per-CPU ones, not modules) must be recovered with its address and type
 * letter, and nothing else. On 6.1 and 6.12 the search ignores the exports and must land on exactly
 * the tables VMCOREINFO names (two output orders: v6.3 and older, v6.4+).
 * CI: the samples' extracts (their pages include the tables: `extract` keeps what the search read).
 * Where the harness recordings exist: the whole dumps, kdump and ELF.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { defaultRequest } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { openDump } from '../src/dump/open-dump.js';
import { writeElfCore } from '../src/dump/elf-writer.js';
import { dumpKernelSymbols, kernelSymbolsFromDump } from '../src/kernel/dump-symbols.js';
import { findKallsymsInImage, type ImageKallsyms } from '../src/kernel/kallsyms-image.js';
import { Kallsyms, type KallsymsRow } from '../src/kernel/kallsyms.js';
import { Program } from '../src/kernel/program.js';
import { renderText } from '../src/report/text.js';
import { openVmcore } from '../src/kernel/kernel.js';
import { elfPages } from './dump-builders.js';
import { errorOf, ROOT, sample } from './helpers.js';

/** The kernel's own lines of a /proc/kallsyms text, as "addr type name" (what the tables can give). */
function kernelLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.includes('\t')) continue; // module symbols come from the modules list, not the tables
    const t = line[17];
    if (t === 'A' || t === 'a') continue; // per-CPU offsets, not addresses
    out.push(line);
  }
  return out.sort();
}

const rowLines = (rows: KallsymsRow[]) => rows.map((r) => `${r.a.toString(16).padStart(16, '0')} ${r.t} ${r.n}`).sort();

/** Symbols of the recovered table missing from the file and the other way round (a few of each). */
function compare(rows: KallsymsRow[], text: string): { compared: number; missing: string[]; extra: string[] } {
  const want = kernelLines(text);
  const got = rowLines(rows);
  const missing: string[] = [];
  const extra: string[] = [];
  let i = 0;
  let j = 0;
  while (i < want.length || j < got.length) {
    if (j >= got.length || (i < want.length && want[i] < got[j])) missing.push(want[i++]);
    else if (i >= want.length || got[j] < want[i]) extra.push(got[j++]);
    else i++, j++;
  }
  return { compared: want.length, missing: missing.slice(0, 5), extra: extra.slice(0, 5) };
}

/** Opens a dump (VMCOREINFO optionally rewritten), runs the image search, hands the tables found to `check`. */
function inImage(path: string, check: (prog: Program, f: ImageKallsyms) => void, vmcoreinfo?: (text: string) => string): void {
  const dump = openDump(path);
  try {
    if (vmcoreinfo) dump.vmcoreinfo = vmcoreinfo(dump.vmcoreinfo!);
    const prog = new Program(dump);
    const f = findKallsymsInImage(prog);
    expect(f, `no kallsyms tables found in ${path}`).not.toBeNull();
    check(prog, f!);
  } finally {
    dump.close();
  }
}

/** The image search must find exactly what VMCOREINFO exports (6.0+). */
function expectExportedTables(prog: Program, f: ImageKallsyms): void {
  const s = (n: string) => prog.vmcoreSymbol(n);
  expect(f.tables.tokenTable).toBe(s('kallsyms_token_table'));
  expect(f.tables.tokenIndex).toBe(s('kallsyms_token_index'));
  expect(f.tables.names).toBe(s('kallsyms_names'));
  expect(f.tables.numSyms).toBe(prog.u32(s('kallsyms_num_syms')!, 'kallsyms_num_syms'));
  expect(f.tables.addresses).toEqual({ kind: 'relative', offsets: s('kallsyms_offsets'), relativeBase: s('kallsyms_relative_base') });
}

const gz = (p: string) => gunzipSync(readFileSync(p)).toString('latin1');

describe('kallsyms tables found in the kernel image (samples)', () => {
  it('6.1 (v6.3 and older order, kallsyms_seqs_of_names before the token table): the exported tables, every guest symbol', () => {
    inImage(sample('demo-kmalloc64/vmcore.extract.gz'), (prog, f) => {
      expectExportedTables(prog, f);
      expect(f.layout).toBe('v6.3 and older order');
      expect(f.agreed).toEqual(expect.arrayContaining(['_stext', 'init_uts_ns', 'init_top_pgt', 'vmap_area_list']));
      expect(compare(f.rows, gz(sample('demo-kmalloc64/guest/kallsyms.txt.gz')))).toEqual({ compared: 93719, missing: [], extra: [] });
    });
  });

  it('6.12 (v6.4+ order: addresses after the token index): the exported tables, the same symbols as their decode', () => {
    inImage(sample('k6.12-demo-kmalloc64/vmcore.extract.gz'), (prog, f) => {
      expectExportedTables(prog, f);
      expect(f.layout).toBe('v6.4+ order');
      expect(rowLines(f.rows)).toEqual(rowLines(kernelSymbolsFromDump(prog)));
    });
  });

  it('5.10 extract, no --kallsyms: symbols from the image (every guest symbol), modules from the modules list, the source says so', () => {
    const v = openVmcore({ vmcore: sample('k5.10-demo-kmalloc64/vmcore.extract.gz'), kallsyms: null, btf: null });
    try {
      expect(v.symbolsSource).toMatch(/\(kallsyms tables found in the kernel image at 0xffffffff[0-9a-f]{8} \+ \d+ module symbols\)$/);
      const text = gz(sample('k5.10-demo-kmalloc64/guest/kallsyms.txt.gz'));
      const f = dumpKernelSymbols(v.prog);
      expect(f.source).toMatch(/^kallsyms tables found in the kernel image at /);
      expect(compare(f.rows!, text)).toEqual({ compared: 104539, missing: [], extra: [] });
      expect([...v.syms.symbolsOf(null)].length).toBe(104539);
      expect(v.syms.addressOf('demo_conn_add', 'memdemo')).toBe(Kallsyms.parse(text).addressOf('demo_conn_add', 'memdemo'));
    } finally {
      v.close();
    }
  });

  it('5.10: --vmcore and --trace alone name demo_conn_add [memdemo], and the report says where the symbols came from', async () => {
    const e = JSON.parse(readFileSync(sample('k5.10-demo-kmalloc64/expected.json'), 'utf8')) as { leakedWhileTracing: number };
    const r = await analyze({ ...defaultRequest(), scan: { workers: 0 }, vmcore: sample('k5.10-demo-kmalloc64/vmcore.extract.gz'), trace: sample('k5.10-demo-kmalloc64/guest/trace.txt.gz') });
    expect(r.source.kallsyms).toMatch(/\(kallsyms tables found in the kernel image at 0xffffffff[0-9a-f]{8} \+ \d+ module symbols\)$/);
    expect(r.verdict?.function).toMatch(/^demo_conn_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[memdemo\]$/);
    expect(r.verdict?.marked).toBe(e.leakedWhileTracing);
    expect(renderText(r)).toContain(`symbols: ${r.source.kallsyms}`);
  });

  it('--kallsyms is still checked against the tables found in the image', () => {
    const text = gz(sample('k5.10-demo-kmalloc64/guest/kallsyms.txt.gz'));
    // slab_caches is not in VMCOREINFO: only the dump's own table can catch this file.
    const moved = text.replace(/^([0-9a-f]{16}) ([A-Za-z]) slab_caches$/m, (_, a: string, t: string) => `${(BigInt('0x' + a) + 0x40n).toString(16)} ${t} slab_caches`);
    expect(moved).not.toBe(text);
    const e = errorOf(() => openVmcore({ vmcore: sample('k5.10-demo-kmalloc64/vmcore.extract.gz'), kallsyms: null, kallsymsTable: Kallsyms.parse(moved, 'moved.txt'), btf: null }));
    expect(e.code).toBe('E_KALLSYMS');
    expect(e.message).toMatch(/^wrong kallsyms for this dump: slab_caches is 0x[0-9a-f]+ in the file but 0x[0-9a-f]+ in the dump's kallsyms tables/);
  });

  it('rejects tables that do not put VMCOREINFO\'s symbols where it says, with one clear line', () => {
    // Another kernel's VMCOREINFO (init_uts_ns 0x40 away) over the same image.
    const e = errorOf(() => inImage(sample('k5.10-demo-kmalloc64/vmcore.extract.gz'), () => {}, (t) => t.replace(/^SYMBOL\(init_uts_ns\)=([0-9a-f]+)$/m, (_, a: string) => `SYMBOL(init_uts_ns)=${(BigInt('0x' + a) + 0x40n).toString(16)}`)));
    expect(e.code).toBe('E_KALLSYMS');
    expect(e.message).toMatch(/^kallsyms tables in the kernel image do not decode to this kernel's symbols \(token table at 0xffffffff[0-9a-f]{8}: 104888 names at 0x[0-9a-f]+, but no address table puts .*init_uts_ns.* where VMCOREINFO says\)$/);
    expect(e.context.file).toBe(sample('k5.10-demo-kmalloc64/vmcore.extract.gz'));
  });

  it('without the tables\' pages: no symbols, and the error says to pass --kallsyms', () => {
    const path = sample('k5.10-demo-kmalloc64/vmcore.extract.gz');
    const dump = openDump(path);
    try {
      const whole = new Program(dump);
      const f = findKallsymsInImage(whole)!;
      // The extract holds few of the image's pages: the search looked at many that are not there, and
      // must not report them as pages the analysis could not read.
      expect(dump.stats.excludedPages).toBe(0);
      // The same dump with the token table's page filtered out (as makedumpfile -d could).
      const pfn = Math.floor(whole.translate(f.tables.tokenTable)! / 4096);
      const phys = dump.phys!;
      const filtered = {
        ...dump,
        phys: { physEnd: phys.physEnd, readPhys: (p: number, len: number) => (p < (pfn + 1) * 4096 && p + len > pfn * 4096 ? null : phys.readPhys(p, len)) },
      };
      const prog = new Program(filtered);
      expect(findKallsymsInImage(prog)).toBeNull();
      const r = dumpKernelSymbols(prog);
      expect(r.rows).toBeNull();
      expect(r.error?.code).toBe('E_KALLSYMS');
      expect(r.error?.message).toMatch(/^the dump has no kallsyms tables: VMCOREINFO exports them since 6.0, and none were found in the kernel image .*: pass --kallsyms FILE/);
    } finally {
      dump.close();
    }
  });
});

/**
 * 4.x kernels (RHEL 8's 4.18) write kallsyms_markers as PTR, u64 on x86_64 (4.14 and 4.19's
 * scripts/kallsyms.c; .long by 5.10). No 4.x dump is at hand: the real 5.10 tables of the sample are
 * laid out again as 4.x writes them (markers widened to u64, the token table and index moved up
 * behind them, .balign 8), in an ELF core of the same pages.
 */
describe('4.x layout: u64 kallsyms_markers', () => {
  it('the 5.10 sample\'s tables re-laid with u64 markers decode to the same symbols', () => {
    const path = sample('k5.10-demo-kmalloc64/vmcore.extract.gz');
    const { pages, vmcoreinfo } = elfPages(path);
    let want: KallsymsRow[] = [];
    let at = { markers: 0n, tokenTable: 0n, tokenIndex: 0n, count: 0 };
    let phys = (_v: bigint) => 0;
    inImage(path, (prog, f) => {
      expect(f.markerSize).toBe(4);
      want = f.rows;
      at = { markers: f.markers, tokenTable: f.tables.tokenTable, tokenIndex: f.tables.tokenIndex, count: Math.ceil(f.tables.numSyms / 256) };
      phys = (v) => prog.translate(v)!;
    });
    const byPfn = new Map(pages.map((p) => [p.pfn, p]));
    const readV = (v: bigint, n: number) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const p = phys(v + BigInt(i));
        out[i] = byPfn.get(Math.floor(p / 4096))!.data[p % 4096];
      }
      return out;
    };
    const writeV = (v: bigint, bytes: Uint8Array) => {
      for (let i = 0; i < bytes.length; i++) {
        const p = phys(v + BigInt(i));
        const pfn = Math.floor(p / 4096);
        if (!byPfn.has(pfn)) byPfn.set(pfn, { pfn, data: new Uint8Array(4096) });
        byPfn.get(pfn)!.data[p % 4096] = bytes[i];
      }
    };
    const markers = new DataView(readV(at.markers, at.count * 4).buffer);
    const tokens = readV(at.tokenTable, Number(at.tokenIndex - at.tokenTable) + 512);
    const wide = new DataView(new ArrayBuffer(at.count * 8));
    for (let i = 0; i < at.count; i++) wide.setBigUint64(i * 8, BigInt(markers.getUint32(i * 4, true)), true);
    writeV(at.markers, new Uint8Array(wide.buffer));
    // The markers start 8-aligned here, so the token table follows them directly, still 8-aligned.
    expect(at.markers % 8n).toBe(0n);
    const movedTable = at.markers + BigInt(at.count * 8);
    writeV(movedTable, tokens);
    const file = join(mkdtempSync(join(tmpdir(), 'sysak-k4x-')), 'k4x.core');
    writeFileSync(file, writeElfCore([...byPfn.values()], 4096, vmcoreinfo.replace(/\0+$/, ''), { cache: 'kmalloc-64', from: 'test: 5.10 tables re-laid as 4.x' }));
    inImage(file, (_prog, f) => {
      expect(f.markerSize).toBe(8);
      expect(f.tables.tokenTable).toBe(movedTable);
      expect(rowLines(f.rows)).toEqual(rowLines(want));
    });
  });
});

/** Whole recordings, where they exist: every kernel symbol of the guest's /proc/kallsyms. */
const RECORDINGS = [
  { dir: join(ROOT, '..', 'shared', 'recordings', 'demo-kmalloc64'), exported: true },
  { dir: join(ROOT, '..', 'rec', 'k5.10-demo-kmalloc64'), exported: false },
  { dir: join(ROOT, '..', 'rec', 'k6.12-demo-kmalloc64'), exported: true },
];
for (const { dir, exported } of RECORDINGS) {
  const files = ['vmcore.kdump', 'vmcore.elf'].filter((f) => existsSync(join(dir, f)));
  const have = files.length > 0 && existsSync(join(dir, 'guest', 'kallsyms.txt'));
  describe.skipIf(!have)(`kallsyms from the kernel image of ${dir} (${have ? files.join(', ') : 'skipped: no recording with vmcore and guest/kallsyms.txt here'})`, () => {
    for (const file of files) {
      it(`${file}: every kernel symbol of guest/kallsyms.txt, name, address and type`, () => {
        inImage(join(dir, file), (prog, f) => {
          if (exported) expectExportedTables(prog, f);
          const c = compare(f.rows, readFileSync(join(dir, 'guest', 'kallsyms.txt'), 'latin1'));
          expect(c.compared).toBeGreaterThan(50_000);
          expect(c).toEqual({ compared: c.compared, missing: [], extra: [] });
        });
      }, 60_000);
    }
  });
}
