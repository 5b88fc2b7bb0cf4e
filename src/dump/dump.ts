/**
 * `src/dump/`: dump formats (ELF, kdump standard and flattened, /proc/kcore, extracts) and their byte
 * sources and decompressors, the page capture for extracts (capture.ts) and the extract writer; the
 * bottom of the layout with util/.
 *
 * What every dump reader registers: physical memory (pages by physical address), optionally virtual
 * segments (/proc/kcore maps kernel virtual addresses directly), and the VMCOREINFO text. The
 * translation layer (kernel/program.ts) sits on top and never learns which format the bytes came from.
 */
import type { DeferredPages } from './decompress.js';
import type { ReadPlanner } from '../util/memory.js';

/** Pages the reader could not give, counted by cause; never turned into zeros. */
export interface DumpStats {
  /** Pages a read asked for that the dump filtered out (makedumpfile -d) or never had. */
  excludedPages: number;
  /** Pages whose data is damaged (bad compression, short data); the first one is named. */
  corruptPages: number;
  firstCorrupt: { pfn: number; offset: number; why: string } | null;
}

export interface PhysicalMemory {
  /** The bytes at physical [paddr, paddr+len), or null if any page is not in the dump. */
  readPhys(paddr: number, len: number): Uint8Array | null;
  /** Highest physical address + 1 the dump describes. */
  readonly physEnd: number;
  /**
   * Optional fast path for bulk reads (slab pages, struct pages): fills `dst` with physical
   * [paddr, paddr + dst.length) in as few file reads as possible, without intermediate copies.
   * False (and `dst` undefined) if any page is not in the dump, as readPhys's null. With `defer`,
   * a compressed dump may hand its compressed pages over instead of decompressing them here.
   */
  readPhysInto?(paddr: number, dst: Uint8Array, defer?: DeferredPages): boolean;
  /**
   * Optional: readPhysInto planned instead of done (dump/read-plan.ts): the file reads (and stored
   * pages to decode) that would fill the chunk at `dst` with physical [paddr, paddr + len). False as
   * readPhysInto's false; null when the source cannot be read by another thread (no file descriptor).
   */
  planPhys?(paddr: number, len: number, plan: ReadPlanner, dst: number): boolean | null;
}

export interface VirtualSegments {
  /** The bytes at kernel virtual [vaddr, vaddr+len) if one segment holds all of them, else null. */
  readVirt(vaddr: bigint, len: number): Uint8Array | null;
  /** True if some segment covers vaddr (so a null read is a hole, not "ask the page tables"). */
  covers(vaddr: bigint): boolean;
}

export interface Dump {
  path: string;
  /** 'kdump-compressed (flattened, zlib)', 'ELF core (QEMU, physical)', '/proc/kcore' ... */
  format: string;
  /** True for /proc/kcore: memory changes under us, results are labelled live. */
  live: boolean;
  vmcoreinfo: string | null;
  phys: PhysicalMemory | null;
  virt: VirtualSegments | null;
  stats: DumpStats;
  /** phys_base from the kdump sub-header, when the format carries it (VMCOREINFO wins if both). */
  headerPhysBase: bigint | null;
  /** The SYSAK note of a `sysak memleak extract` image: what it was cut from, and for which cache. */
  extractInfo: Record<string, unknown> | null;
  close(): void;
}

export function newStats(): DumpStats {
  return { excludedPages: 0, corruptPages: 0, firstCorrupt: null };
}

/** The kernel writes at most a page of VMCOREINFO (VMCOREINFO_BYTES); more is a damaged size field. */
export const MAX_VMCOREINFO = 1 << 20;

/**
 * Note bytes (VMCOREINFO, note names) -> text: a C string, so it ends at the first NUL. Linear whatever follows (a
 * regex strip of trailing NULs costs the square of a NUL run that is followed by other bytes).
 */
export function cString(desc: Uint8Array): string {
  const z = desc.indexOf(0);
  return new TextDecoder().decode(z < 0 ? desc : desc.subarray(0, z));
}
