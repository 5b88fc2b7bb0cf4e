/**
 * Fuzz targets: every parser and reader of a file the user gives, each with a real seed input cut
 * from samples/ (crash text, kallsyms, /proc snapshots, ftrace text, ring-buffer pages, ELF and kdump
 * images of the real extract, VMCOREINFO, BTF) and a runner that reads it the way the tool does.
 * A run must return or throw a MemleakError that names the file (checked by `verdictOf`); anything
 * else, or a run longer than the bound, is a bug. Shared by the property tests in `npm test`
 * (fuzz.test.ts, fixed seed) and the long campaign (`npm run fuzz`, campaign.ts).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemleakError, type ErrorCode } from '../../src/errors.js';
import { parseCrashRd } from '../../src/input/crash-rd.js';
import { parseCrashKmem } from '../../src/input/crash-kmem.js';
import { parseSlabinfo } from '../../src/input/slabinfo.js';
import { Kallsyms } from '../../src/kernel/kallsyms.js';
import { parseVmcoreinfo } from '../../src/kernel/vmcoreinfo.js';
import { Btf, trailingBytes } from '../../src/kernel/btf.js';
import { SparseMemory } from '../../src/util/memory.js';
import { parseFtrace } from '../../src/trace/ftrace.js';
import { outstandingSlab } from '../../src/slab/outstanding.js';
import { outstandingPages } from '../../src/pages/page-trace.js';
import { vmallocByCaller } from '../../src/vmalloc/vmallocinfo.js';
import { parseVmallocinfo } from '../../src/check/vmallocinfo.js';
import { parseMeminfo } from '../../src/check/proc.js';
import { parseEventFormat, parseHeaderPage, type PageHeaderFormat } from '../../src/live/event-format.js';
import { decodePage } from '../../src/live/ring-buffer.js';
import { BufferSource } from '../../src/dump/byte-source.js';
import { openDumpSource } from '../../src/dump/open-dump.js';
import { writeElfCore } from '../../src/dump/elf-writer.js';
import { buildKdump, elfPages, flatten } from '../dump-builders.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/dist\/?$/, '');
const SAMPLES = join(ROOT.endsWith('/dist') ? join(ROOT, '..') : ROOT, 'samples');

function sampleBytes(rel: string): Uint8Array {
  const b = readFileSync(join(SAMPLES, rel));
  return new Uint8Array(rel.endsWith('.gz') ? gunzipSync(b) : b);
}
const sampleText = (rel: string) => new TextDecoder().decode(sampleBytes(rel));
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const lines = (s: string, from: number, n: number) => s.split('\n').slice(from, from + n).join('\n') + '\n';

export interface Target {
  name: string;
  kind: 'text' | 'binary';
  /** Where mutations of a binary input land most: the headers. */
  hotBytes?: number;
  /** Relative cost: heavy targets get fewer runs. */
  heavy?: boolean;
  seed(): Uint8Array | Promise<Uint8Array>;
  run(input: Uint8Array): void | Promise<void>;
}

const once = <T>(f: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= f());
};

const extractPages = once(() => elfPages(join(SAMPLES, 'demo-kmalloc64/vmcore.extract.gz')));
/** A small image: the first pages of the real extract (kernel page tables, struct pages, slabs). */
const smallPages = once(() => extractPages().pages.slice(0, 40));
const vmcoreinfoOf = once(() => extractPages().vmcoreinfo.replace(/\0+$/, ''));

/** Opens an image the way --vmcore does and reads all it claims to hold. */
function readDumpImage(name: string, bytes: Uint8Array): void {
  const d = openDumpSource(new BufferSource(name, bytes));
  if (d.vmcoreinfo) parseVmcoreinfo(d.vmcoreinfo, `${name} (VMCOREINFO)`);
  const phys = d.phys;
  if (phys) {
    // Every page up to the first 256 that the dump says it has; holes and corrupt pages are null.
    let n = 0;
    for (let a = 0; a < phys.physEnd && n < 256; a += 4096) {
      if (phys.readPhys(a, 4096) !== null) n++;
      if (a > 1 << 30) a = Math.max(a, phys.physEnd - 8 * 4096);
    }
  }
  d.close();
}

const FORMATS_TEXT = once(() => sampleText('demo-kmalloc64/guest/trace_event_formats.txt.gz'));
const HEADER_PAGE_TEXT =
  '\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n';
const headerPage = once((): PageHeaderFormat => parseHeaderPage(HEADER_PAGE_TEXT, 'header_page'));

/** A ring-buffer page as 6.1 writes it: kmalloc/kfree records, a time extend, missed-events count. */
function ringPage(): Uint8Array {
  const formats = FORMATS_TEXT().split(/^== /m).filter(Boolean).map((block) => {
    const [head, ...rest] = block.split('\n');
    return parseEventFormat(rest.join('\n'), head.trim().split('/')[0], head);
  });
  const p = new Uint8Array(4096);
  const dv = new DataView(p.buffer);
  dv.setBigUint64(0, 1_000_000_000n, true);
  let pos = 16;
  const rec = (name: string, delta: number, vals: Record<string, bigint>) => {
    const f = formats.find((x) => x.name === name)!;
    const size = Math.max(...[...f.fields.values()].map((x) => x.offset + x.size));
    const words = Math.ceil(size / 4);
    if (delta >= 1 << 27) {
      dv.setUint32(pos, 30 | ((delta & ((1 << 27) - 1)) << 5), true);
      dv.setUint32(pos + 4, Math.floor(delta / 2 ** 27), true);
      pos += 8;
      delta = 0;
    }
    dv.setUint32(pos, words | (delta << 5), true);
    dv.setUint16(pos + 4, f.id, true);
    for (const [k, v] of Object.entries(vals)) {
      const fl = f.fields.get(k);
      if (fl?.size === 8) dv.setBigUint64(pos + 4 + fl.offset, v, true);
      else if (fl?.size === 4) dv.setUint32(pos + 4 + fl.offset, Number(v), true);
    }
    pos += 4 + words * 4;
  };
  for (let i = 0; i < 20; i++) {
    rec('kmalloc', i === 5 ? 2 ** 28 : 1000, { call_site: 0xffffffffc0612c94n, ptr: 0xffff8eadc3350980n + BigInt(i * 64), bytes_req: 40n, bytes_alloc: 64n });
    rec('kfree', 500, { call_site: 0xffffffff8123n, ptr: 0xffff8eadc3350980n + BigInt(i * 64) });
  }
  dv.setBigUint64(pos, 7n, true);
  dv.setBigUint64(8, BigInt(pos - 16) + 2n ** 30n + 2n ** 31n, true);
  return p;
}

/**
 * The dump's own .BTF (4 MB) cut to its first 3000 types (struct page and the slab types among the
 * first thousands), strings kept whole: the BTF target's seed, parsed in milliseconds.
 */
const btfSeed = once(async (): Promise<Uint8Array> => {
  const { openDump } = await import('../../src/dump/open-dump.js');
  const { Program } = await import('../../src/kernel/program.js');
  const { kernelSymbolsFromDump } = await import('../../src/kernel/dump-symbols.js');
  const d = openDump(join(SAMPLES, 'demo-kmalloc64/vmcore.extract.gz'));
  const prog = new Program(d);
  const ks = Kallsyms.fromRows(kernelSymbolsFromDump(prog), 'dump');
  const start = ks.addressOf('__start_BTF')!;
  const bytes = prog.mustRead(start, Number(ks.addressOf('__stop_BTF')! - start), '.BTF');
  d.close();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hdrLen = dv.getUint32(4, true);
  const typeOff = dv.getUint32(8, true);
  let p = 0;
  for (let n = 0; n < 3000; n++) {
    const info = dv.getUint32(hdrLen + typeOff + p + 4, true);
    p += 12 + trailingBytes((info >>> 24) & 0x1f, info & 0xffff)!;
  }
  const strOff = dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  const out = new Uint8Array(hdrLen + p + strLen);
  out.set(bytes.subarray(0, hdrLen));
  out.set(bytes.subarray(hdrLen + typeOff, hdrLen + typeOff + p), hdrLen);
  out.set(bytes.subarray(hdrLen + strOff, hdrLen + strOff + strLen), hdrLen + p);
  const ov = new DataView(out.buffer);
  ov.setUint32(8, 0, true);
  ov.setUint32(12, p, true);
  ov.setUint32(16, p, true);
  return out;
});

/**
 * What a reader that returns must have checked: every number it hands on is a safe, non-negative
 * integer (a count of 99999999999999999999 read as 1e20 is a silent wrong result, not a refusal), and
 * the geometry it gives is one a slab can have. A violation is a plain Error: the verdict's failure.
 */
function invariant(ok: boolean, what: string): void {
  if (!ok) throw new Error(`invariant: ${what}`);
}
const count = (v: number | null | undefined) => v === null || v === undefined || (Number.isSafeInteger(v) && v >= 0);

export const TARGETS: Target[] = [
  {
    name: 'crash-rd',
    kind: 'text',
    seed: () => enc(lines(sampleText('demo-kmalloc64/crash/rd64_pages.txt.gz'), 0, 300) + lines(sampleText('demo-kmalloc64/crash/rdS_pages.txt.gz'), 4000, 100)),
    run: (b) => void parseCrashRd(dec(b), 'rd.txt', new SparseMemory('fuzz')),
  },
  {
    name: 'crash-kmem',
    kind: 'text',
    seed: () => enc(lines(sampleText('demo-kmalloc64/crash/kmem_S_kmalloc-64.txt'), 0, 400)),
    run: (b) => {
      const k = parseCrashKmem(dec(b), 'kmem.txt');
      for (const c of k.caches) {
        invariant([c.objectSize, c.allocated, c.total, c.slabs, c.slabSize].every(count), `kmem row numbers ${JSON.stringify([c.objectSize, c.allocated, c.total, c.slabs, c.slabSize])}`);
        invariant(c.objectSize >= 1 && c.objectSize <= c.slabSize && c.slabSize >= 4096 && (c.slabSize & (c.slabSize - 1)) === 0, `kmem geometry ${c.objectSize}/${c.slabSize}`);
      }
    },
  },
  {
    name: 'kallsyms',
    kind: 'text',
    seed: () => {
      const t = sampleText('demo-kmalloc64/guest/kallsyms.txt.gz');
      const all = t.split('\n');
      return enc(all.slice(0, 1500).join('\n') + '\n' + all.slice(-300).join('\n'));
    },
    run: (b) => {
      const k = Kallsyms.parse(dec(b), 'kallsyms.txt');
      k.lookup(0xffffffff81000000n);
      k.lookup(0xffffffffc0612c94n);
      k.resolveExpression('demo_conn_add+0x24/0x140 [memdemo]');
      k.addressOf('_stext');
    },
  },
  {
    name: 'slabinfo',
    kind: 'text',
    seed: () => sampleBytes('demo-kmalloc64/guest/slabinfo.after'),
    run: (b) => {
      for (const r of parseSlabinfo(dec(b), 'slabinfo').values()) {
        invariant([r.activeObjs, r.numObjs, r.objectSize, r.objsPerSlab, r.pagesPerSlab, r.activeSlabs, r.numSlabs].every(count), `slabinfo numbers of ${r.name}`);
        invariant(r.objectSize >= 8 && r.objsPerSlab >= 1 && r.objsPerSlab * r.objectSize <= r.pagesPerSlab * 4096, `slabinfo geometry of ${r.name}`);
      }
    },
  },
  {
    name: 'meminfo',
    kind: 'text',
    seed: () => sampleBytes('demo-kmalloc64/guest/meminfo.after'),
    run: (b) => {
      const m = parseMeminfo(dec(b), 'meminfo');
      invariant([...m.values()].every(count), 'meminfo values');
      for (const k of ['MemTotal', 'MemFree', 'Active', 'Inactive', 'Slab', 'SUnreclaim']) invariant(m.has(k), `meminfo without ${k} was accepted`);
    },
  },
  {
    name: 'vmallocinfo',
    kind: 'text',
    seed: () => enc(lines(sampleText('vmleak-vmalloc/guest/vmallocinfo.after.gz'), 0, 400)),
    run: (b) => {
      const areas = parseVmallocinfo(dec(b), 'vmallocinfo', null);
      for (const a of areas) invariant(count(a.size) && count(a.pages) && (a.pages ?? 0) * 4096 <= a.size, `vmallocinfo area ${a.size} bytes, pages=${a.pages}`);
      vmallocByCaller(areas, areas.slice(0, areas.length >> 1));
    },
  },
  {
    name: 'ftrace',
    kind: 'text',
    seed: () => enc(
      lines(sampleText('demo-kmalloc64/guest/trace.txt.gz'), 0, 300) +
      lines(sampleText('demo-kmalloc64-stacktrace/guest/trace.txt.gz'), 200, 200) +
      lines(sampleText('vmleak-page/guest/trace.txt.gz'), 100, 150),
    ),
    run: (b) => {
      const t = parseFtrace(dec(b), 'trace.txt', null);
      for (const e of t.events) invariant(count(e.bytesAlloc) && count(e.bytesReq) && count(e.pfn) && Number.isFinite(e.ts), `trace event of line ${e.line}: bytes ${e.bytesReq}/${e.bytesAlloc}, pfn ${e.pfn}, ts ${e.ts}`);
      outstandingSlab(t, { freeOnlyPct: 20, bytesAlloc: 64 });
      outstandingPages(t, { freeOnlyPct: 20, memory: null, pageOffsetBase: null });
    },
  },
  {
    name: 'event-format',
    kind: 'text',
    seed: () => enc(FORMATS_TEXT().split(/^== /m).filter(Boolean).slice(0, 3).join('== ')),
    run: (b) => {
      for (const block of dec(b).split(/^== /m).filter(Boolean)) {
        const [head, ...rest] = block.split('\n');
        parseEventFormat(rest.join('\n'), head.trim().split('/')[0], 'events/kmem/format');
      }
      parseHeaderPage(dec(b).slice(0, 400) + HEADER_PAGE_TEXT, 'header_page');
    },
  },
  {
    name: 'ring-buffer-page',
    kind: 'binary',
    hotBytes: 64,
    seed: ringPage,
    run: (b) => void decodePage(b, headerPage()),
  },
  {
    name: 'vmcoreinfo',
    kind: 'text',
    seed: () => enc(vmcoreinfoOf()),
    run: (b) => void parseVmcoreinfo(dec(b), 'dump (VMCOREINFO)'),
  },
  {
    name: 'elf-core',
    kind: 'binary',
    hotBytes: 4096,
    seed: () => writeElfCore(smallPages(), 4096, vmcoreinfoOf(), { cache: 'kmalloc-64', from: 'fuzz seed' }),
    run: (b) => readDumpImage('core.elf', b),
  },
  {
    name: 'kdump-standard',
    kind: 'binary',
    hotBytes: 5 * 4096,
    seed: () => buildKdump(smallPages(), vmcoreinfoOf()).bytes,
    run: (b) => readDumpImage('vmcore.kdump', b),
  },
  {
    name: 'kdump-flattened',
    kind: 'binary',
    hotBytes: 4096 + 64,
    seed: () => flatten(buildKdump(smallPages(), vmcoreinfoOf()).bytes, 16384),
    run: (b) => readDumpImage('vmcore.flat', b),
  },
  {
    // The whole offline analysis of a damaged extract: headers, page tables, kallsyms tables, BTF,
    // the slab walk, freelists and the scan all read mutated bytes.
    name: 'vmcore-analysis',
    kind: 'binary',
    hotBytes: 8192,
    heavy: true,
    seed: () => sampleBytes('demo-kmalloc64/vmcore.extract.gz'),
    run: async (b) => {
      const { analyze } = await import('../../src/slab/analyze.js');
      const { defaultRequest } = await import('../../src/request.js');
      const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const dir = mkdtempSync(join(tmpdir(), 'sysak-fuzz-'));
      const file = join(dir, 'vmcore.extract');
      writeFileSync(file, b);
      try {
        await analyze({ ...defaultRequest(), vmcore: file, geometry: { cache: 'kmalloc-64' }, scan: { workers: 0 } });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'btf',
    kind: 'binary',
    hotBytes: 24,
    seed: btfSeed,
    run: (b) => {
      const btf = Btf.parse(b, 'vmlinux.btf');
      for (const [s, m] of [['page', 'flags'], ['list_head', 'next'], ['kmem_cache', 'cpu_slab'], ['task_struct', 'comm']]) {
        btf.sizeOf(s);
        const mem = btf.member(s, m);
        if (mem) {
          btf.sizeOfId(mem.typeId);
          btf.arrayLength(mem.typeId);
        }
      }
      btf.enumerator('PG_slab');
    },
  },
];

/** What a run may end in: nothing, or one of these codes naming the file. */
const EXPECTED_CODES: ErrorCode[] = ['E_FORMAT', 'E_GEOMETRY', 'E_KALLSYMS', 'E_TRACE', 'E_NO_DATA', 'E_IO', 'E_USAGE'];

export type Verdict = { ok: true; error: string | null } | { ok: false; why: string };

/** Runs a target on one input and says whether the outcome is allowed. */
export async function verdictOf(t: Target, input: Uint8Array): Promise<Verdict> {
  try {
    await t.run(input);
    return { ok: true, error: null };
  } catch (e) {
    if (!(e instanceof MemleakError)) return { ok: false, why: `not a MemleakError: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}` };
    if (!EXPECTED_CODES.includes(e.code)) return { ok: false, why: `code ${e.code}: ${e.message}` };
    if (!e.context.file) return { ok: false, why: `no file named: ${e.message}` };
    if (!e.message || e.message.includes('undefined') || e.message.includes('NaN')) return { ok: false, why: `message says undefined/NaN: ${e.where()}` };
    return { ok: true, error: e.where() };
  }
}
