/**
 * Symbols and types from the dump itself, so that a vmcore alone is enough:
 * - kallsyms rebuilt from the kernel's compressed tables (kallsyms-tables.ts), whose addresses VMCOREINFO
 *   exports since 6.0 (v6.0: "vmcoreinfo: include kallsyms symbols" and f09bddbd8661 "vmcoreinfo: add
 *   kallsyms_num_syms symbol"), and which older kernels' images hold all the same (kallsyms-image.ts);
 * - module symbols from each `struct module`'s kallsyms symtab (the `modules` list);
 * - BTF from the image's .BTF section (__start_BTF .. __stop_BTF).
 */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { Btf } from './btf.js';
import { Kallsyms, type KallsymsRow } from './kallsyms.js';
import { findKallsymsInImage } from './kallsyms-image.js';
import { decodeKallsymsTables, lookupInKallsymsTables, type KallsymsTables } from './kallsyms-tables.js';
import type { Program } from './program.js';
import type { KernelTypes } from './types.js';

const KALLSYMS_SYMBOLS = ['kallsyms_names', 'kallsyms_num_syms', 'kallsyms_token_table', 'kallsyms_token_index', 'kallsyms_offsets', 'kallsyms_relative_base'];

export function dumpHasKallsyms(prog: Program): boolean {
  return KALLSYMS_SYMBOLS.every((s) => prog.vmcoreSymbol(s) !== null);
}

/**
 * The kernel's own symbols (not modules) and where they came from, or why there are none (errors as
 * data: with a kallsyms file the caller only warns). VMCOREINFO's exported tables (6.0+) first, else
 * the tables found in the kernel image.
 */
export interface DumpKernelSymbols {
  rows: KallsymsRow[] | null;
  /** 'VMCOREINFO kallsyms tables', 'kallsyms tables found in the kernel image at 0x...', or '' */
  source: string;
  error: MemleakError | null;
}

/** The tables VMCOREINFO exports (6.0+). */
export function vmcoreinfoTables(prog: Program): KallsymsTables {
  const sym = (n: string) => prog.vmcoreSymbol(n)!;
  return {
    numSyms: prog.u32(sym('kallsyms_num_syms'), 'kallsyms_num_syms'),
    names: sym('kallsyms_names'),
    tokenTable: sym('kallsyms_token_table'),
    tokenIndex: sym('kallsyms_token_index'),
    addresses: { kind: 'relative', offsets: sym('kallsyms_offsets'), relativeBase: sym('kallsyms_relative_base') },
  };
}

export function dumpKernelSymbols(prog: Program): DumpKernelSymbols {
  try {
    if (dumpHasKallsyms(prog)) {
      const { rows } = decodeKallsymsTables(prog, vmcoreinfoTables(prog), 'kallsyms tables in VMCOREINFO');
      return { rows, source: 'VMCOREINFO kallsyms tables', error: null };
    }
    const found = findKallsymsInImage(prog);
    if (found) return { rows: found.rows, source: `kallsyms tables found in the kernel image at ${hex(found.tables.tokenTable)}`, error: null };
    return {
      rows: null,
      source: '',
      error: new MemleakError(
        'E_KALLSYMS',
        'the dump has no kallsyms tables: VMCOREINFO exports them since 6.0, and none were found in the kernel image (pages filtered out, or CONFIG_KALLSYMS off): pass --kallsyms FILE, a copy of the machine\'s /proc/kallsyms',
        { file: prog.dump.path },
      ),
    };
  } catch (e) {
    if (e instanceof MemleakError) return { rows: null, source: '', error: e };
    throw e;
  }
}

/** The kernel's own symbols from the dump; throws the reason if there are none. */
export function kernelSymbolsFromDump(prog: Program): KallsymsRow[] {
  const r = dumpKernelSymbols(prog);
  if (!r.rows) throw r.error!;
  return r.rows;
}

/** Walks `modules` and reads every module's symtab (struct mod_kallsyms). Needs BTF for struct module. */
export function moduleSymbolsFromDump(prog: Program, kernel: Kallsyms, types: KernelTypes): { rows: KallsymsRow[]; warnings: string[] } {
  const rows: KallsymsRow[] = [];
  const warnings: string[] = [];
  const head = kernel.addressOf('modules');
  if (head === null) return { rows, warnings: ['no `modules` symbol: module symbols not loaded'] };
  if (!types.btf) return { rows, warnings: ['no BTF: module symbols cannot be read from the dump (pass --kallsyms or --btf)'] };
  const offList = types.offsetOf('module', 'list');
  const offName = types.offsetOf('module', 'name');
  const offKallsyms = types.offsetOf('module', 'kallsyms');
  const offs: ModKallsymsOffsets = {
    symtab: types.offsetOf('mod_kallsyms', 'symtab'),
    num: types.offsetOf('mod_kallsyms', 'num_symtab'),
    strtab: types.offsetOf('mod_kallsyms', 'strtab'),
    // typetab since v5.2 ("kallsyms: store type information in its own array"); before it the type
    // letter is derived from st_info as a fallback.
    typetab: types.tryOffsetOf('mod_kallsyms', 'typetab'),
  };
  let node = prog.u64(head, 'modules list');
  for (let guard = 0; node !== head; guard++) {
    if (guard > 10000) {
      warnings.push('the modules list does not end: stopped after 10000 entries');
      break;
    }
    const mod = node - BigInt(offList);
    const name = prog.cString(mod + BigInt(offName), 56, 'module name');
    const ks = prog.read(mod + BigInt(offKallsyms), 8);
    const next = prog.read(node, 8);
    if (!ks || !next) {
      warnings.push(`module ${name || hex(mod)}: struct module not in the dump, its symbols are missing`);
      break;
    }
    const got = readModKallsyms(prog, name, new DataView(ks.buffer).getBigUint64(0, true), offs);
    if (typeof got === 'string') warnings.push(got);
    else rows.push(...got);
    node = new DataView(next.buffer).getBigUint64(0, true);
  }
  return { rows, warnings };
}

interface ModKallsymsOffsets {
  symtab: number;
  num: number;
  strtab: number;
  typetab: number | null;
}

const ELF64_SYM = 24;

/** One module's symbols from its struct mod_kallsyms (Elf64_Sym table + strtab), or why they are missing. */
function readModKallsyms(prog: Program, name: string, ksAddr: bigint, o: ModKallsymsOffsets): KallsymsRow[] | string {
  const hdr = prog.read(ksAddr, Math.max(o.symtab, o.num, o.strtab, o.typetab ?? 0) + 8);
  if (!hdr) return `module ${name}: its kallsyms are not in the dump`;
  const hv = new DataView(hdr.buffer);
  const n = hv.getUint32(o.num, true);
  const syms = n > 0 && n < 1_000_000 ? prog.read(hv.getBigUint64(o.symtab, true), n * ELF64_SYM) : null;
  if (!syms) return `module ${name}: symtab (${n} symbols) not in the dump`;
  const typetab = o.typetab !== null ? hv.getBigUint64(o.typetab, true) : 0n;
  const typeLetters = typetab ? prog.read(typetab, n) : null;
  const sv = new DataView(syms.buffer);
  let maxName = 0;
  for (let i = 0; i < n; i++) maxName = Math.max(maxName, sv.getUint32(i * ELF64_SYM, true));
  const strtab = hv.getBigUint64(o.strtab, true);
  const strBuf = prog.read(strtab, maxName + 256) ?? prog.read(strtab, maxName + 1);
  if (!strBuf) return `module ${name}: strtab not in the dump`;
  const dec = new TextDecoder('latin1');
  const rows: KallsymsRow[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * ELF64_SYM;
    const st = sv.getUint32(at, true);
    const info = syms[at + 4];
    const shndx = sv.getUint16(at + 6, true);
    const value = sv.getBigUint64(at + 8, true);
    if (st === 0 || shndx === 0 || value === 0n) continue;
    const z = strBuf.indexOf(0, st);
    const symName = dec.decode(strBuf.subarray(st, z < 0 ? strBuf.length : z));
    if (!symName) continue;
    // STT_FUNC (2) is text, STT_OBJECT (1) data; typetab, when present, is what /proc/kallsyms prints.
    const t = typeLetters ? String.fromCharCode(typeLetters[i]) : (info & 0xf) === 2 ? 't' : 'd';
    if (t === 'a' || t === 'A' || t === 'U') continue;
    rows.push({ a: value, t, n: symName, m: name });
  }
  return rows;
}

/** The dump's own .BTF section, or null if the symbols or pages are missing. */
export function btfFromDump(prog: Program, kernel: Kallsyms): Btf | null {
  const start = kernel.addressOf('__start_BTF');
  const stop = kernel.addressOf('__stop_BTF');
  if (start === null || stop === null || stop <= start || stop - start > 64n << 20n) return null;
  const bytes = prog.read(start, Number(stop - start));
  if (!bytes) return null;
  return Btf.parse(bytes, `${prog.dump.path} (.BTF at ${hex(start)})`);
}

/** Symbols of the dump's own tables a kallsyms file is checked against. */
const CHECKED_IN_TABLES = ['slab_caches', 'modules', 'page_offset_base', 'kmalloc_caches', '__per_cpu_offset'];

/**
 * The dump's own addresses of the symbols checkKallsymsAgainstDump compares, or null when the dump has
 * no readable tables. Decodes only those names where it can (VMCOREINFO's tables); else the whole table.
 */
export function dumpAddressesForCheck(prog: Program): Map<string, bigint> | null {
  if (dumpHasKallsyms(prog)) {
    try {
      const found = lookupInKallsymsTables(prog, vmcoreinfoTables(prog), CHECKED_IN_TABLES);
      if (found) return found;
    } catch (e) {
      if (!(e instanceof MemleakError)) throw e;
    }
  }
  const r = dumpKernelSymbols(prog);
  if (!r.rows) return null;
  const table = Kallsyms.fromRows(r.rows, '');
  const out = new Map<string, bigint>();
  for (const n of CHECKED_IN_TABLES) {
    const a = table.addressOf(n);
    if (a !== null) out.set(n, a);
  }
  return out;
}

/**
 * A kallsyms file must describe this dump's kernel: symbols the dump knows independently (VMCOREINFO,
 * or its own tables: dumpAddressesForCheck) must sit at the same addresses.
 */
export function checkKallsymsAgainstDump(prog: Program, file: Kallsyms, fromDump: Map<string, bigint> | null): void {
  const checks: [string, bigint, string][] = [];
  for (const n of ['_stext', 'init_top_pgt', 'vmap_area_list', 'init_uts_ns']) {
    const v = prog.vmcoreSymbol(n);
    if (v !== null) checks.push([n, v, 'VMCOREINFO']);
  }
  if (fromDump) {
    for (const n of CHECKED_IN_TABLES) {
      const v = fromDump.get(n);
      if (v !== undefined) checks.push([n, v, 'the dump\'s kallsyms tables']);
    }
  }
  for (const [name, want, where] of checks) {
    const got = file.addressOf(name);
    if (got !== null && got !== want) {
      throw new MemleakError(
        'E_KALLSYMS',
        `wrong kallsyms for this dump: ${name} is ${hex(got)} in the file but ${hex(want)} in ${where} (another boot or another kernel)`,
        { file: file.source },
      );
    }
  }
}
