/**
 * `src/kernel/`: reading a kernel from its memory (drgn's model): this file opens one Kernel;
 * program.ts translates addresses; vmcoreinfo.ts, btf.ts, types.ts, kallsyms.ts and dump-symbols.ts
 * give symbols and types; mm.ts (struct page) and slub.ts (SLUB) are the helpers named after the
 * kernel's; address-space.ts the x86_64 layout. Depends only on dump/ and util/.
 *
 * Opening a kernel: a vmcore, /proc/kcore or an extract becomes one Kernel (drgn's Program): the dump's
 * memory behind the translation layer (program.ts) with the address-space bases read at open, its
 * symbols (a kallsyms file, or the dump's own tables plus module symbols) and its types (a BTF file, or
 * the dump's .BTF). The helpers that read kernel structures (slub.ts, mm.ts, ...) take it.
 */
import type { Dump } from '../dump/dump.js';
import { openDump } from '../dump/open-dump.js';
import { Btf } from './btf.js';
import { btfFromDump, checkKallsymsAgainstDump, dumpAddressesForCheck, dumpKernelSymbols, moduleSymbolsFromDump } from './dump-symbols.js';
import { Kallsyms } from './kallsyms.js';
import { Program, type KernelProgram } from './program.js';
import { KernelTypes } from './types.js';
import type { SlubContext } from './slub.js';
import { DEFAULT_PAGE_OFFSET_BASE, DEFAULT_VMALLOC_BASE, DEFAULT_VMEMMAP_BASE, type AddressSpace } from './address-space.js';
import { pfnToPage } from './mm.js';
import { readBinary, readText } from '../util/read-file.js';
import { Phases } from '../phases.js';

export interface VmcoreInputs {
  vmcore: string;
  kallsyms: string | null;
  /** `kallsyms` already parsed: used instead of reading the file again. */
  kallsymsTable?: Kallsyms;
  btf: string | null;
  /** Keep every physical page read (for `extract` and live --save). */
  capturePages?: boolean;
}

/**
 * One opened kernel (drgn's Program): its memory with the address-space bases fixed at open, its
 * symbols (kernel + modules) and its types. Built once by openVmcore; nothing is set on it afterwards.
 */
export interface Kernel extends SlubContext {
  dump: Dump;
  prog: KernelProgram;
  symbolsSource: string;
  typesSource: string;
  warnings: string[];
  close(): void;
}

/** Opens a vmcore, /proc/kcore or an extract as a Kernel. */
export function openVmcore(inp: VmcoreInputs, phases: Phases = new Phases()): Kernel {
  const dump = phases.run('open', 'bytes', () => openDump(inp.vmcore));
  try {
    // The kernel image is read through the page tables' fixed mapping: symbols first, then the bases.
    const image = new Program(dump, { capture: inp.capturePages === true });
    const warnings: string[] = [];
    const symbols = phases.start('symbols', 'objects');
    const fileSyms = inp.kallsymsTable ?? (inp.kallsyms ? Kallsyms.parse(readText(inp.kallsyms), inp.kallsyms) : null);
    // Decoded once: the kernel's table, and later the base of kernel + module symbols. A live kernel's
    // own /proc/kallsyms needs no cross-check against its image (the search and decode would only slow
    // the first run); an extract being kept (--save) still gets the tables.
    // With a file, the dump's tables only check it: a few names are looked up, not the whole table built.
    const fromDump = fileSyms ? { rows: null, source: '', error: null } : dumpKernelSymbols(image);
    const kernelRows = fromDump.rows;
    const dumpKernel = fromDump.rows ? Kallsyms.fromRows(fromDump.rows, `${dump.path} (${fromDump.source})`) : null;
    if (fileSyms) checkKallsymsAgainstDump(image, fileSyms, dump.live && !inp.capturePages ? null : dumpAddressesForCheck(image));
    symbols.add(0, kernelRows?.length ?? fileSyms?.size ?? 0);
    symbols.end();
    const kernelSyms = fileSyms ?? dumpKernel;
    if (!kernelSyms) throw fromDump.error!;
    const base = (name: string) => {
      const a = kernelSyms.addressOf(name);
      // Without CONFIG_RANDOMIZE_MEMORY the bases are constants (Documentation/x86/x86_64/mm.rst).
      return a === null ? null : image.u64(a, name);
    };
    const prog = image.withBases({
      pageOffsetBase: base('page_offset_base') ?? DEFAULT_PAGE_OFFSET_BASE,
      vmallocBase: base('vmalloc_base') ?? DEFAULT_VMALLOC_BASE,
      vmemmapBase: base('vmemmap_base') ?? DEFAULT_VMEMMAP_BASE,
    });
    const typesPhase = phases.start('types', 'bytes');
    let btf: Btf | null = null;
    let typesSource: string;
    if (inp.btf) {
      btf = Btf.parse(readBinary(inp.btf), inp.btf);
      typesSource = inp.btf;
    } else {
      btf = btfFromDump(prog, kernelSyms);
      typesSource = btf ? btf.source : 'VMCOREINFO only (no BTF in the dump: pass --btf)';
    }
    const types = new KernelTypes(btf, prog.info, dump.path);
    typesPhase.end();
    const modPhase = phases.start('module symbols', 'objects');
    let syms = kernelSyms;
    let symbolsSource = kernelSyms.source;
    if (!fileSyms) {
      const mods = moduleSymbolsFromDump(prog, kernelSyms, types);
      warnings.push(...mods.warnings);
      syms = Kallsyms.fromRows([...kernelRows!, ...mods.rows], kernelSyms.source);
      symbolsSource = `${dump.path} (${fromDump.source} + ${mods.rows.length} module symbols)`;
      modPhase.add(0, mods.rows.length);
    }
    modPhase.end();
    return { dump, prog, syms, types, symbolsSource, typesSource, btfFile: inp.btf ?? null, warnings, close: () => dump.close() };
  } catch (e) {
    dump.close();
    throw e;
  }
}

export function addressSpaceOf(v: Kernel): AddressSpace {
  const b = v.prog.bases;
  const physEnd = v.prog.directMapBytes;
  return {
    source: v.dump.live ? 'kcore (live)' : 'vmcore',
    directMap: { lo: b.pageOffsetBase, hi: b.pageOffsetBase + (physEnd > 0n ? physEnd : 1n << 46n) },
    // VMALLOC_SIZE_TB is 32 with 4-level paging, 12800 with 5-level (Documentation/x86/x86_64/mm.rst).
    vmalloc: { lo: b.vmallocBase, hi: b.vmallocBase + ((v.prog.pgtableL5 ? 12800n : 32n) << 40n) },
    vmemmap: { lo: b.vmemmapBase, hi: physEnd > 0n ? pfnToPage(v.prog, Number(physEnd / BigInt(v.prog.pageSize))) : b.vmemmapBase + (1n << 40n) },
  };
}
