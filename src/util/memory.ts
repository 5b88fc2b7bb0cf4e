/**
 * Memory the analysis can read. Readers only register segments here (drgn's Program over memory
 * segments); the analysis asks `read(addr, len)` and never learns which file the bytes came from.
 */
import { PAGE_SIZE, PAGE_SIZE_BIG } from './page.js';

/**
 * Where a compressed source may hand pages over undecompressed (dump/decompress.ts PageDeferral): the
 * scan workers decompress them. `at(base)` shifts destination offsets (a slab inside a chunk buffer).
 */
export interface DeferredPages {
  add(dstOffset: number, raw: Uint8Array, kind: 'none' | 'zlib' | 'lzo' | 'snappy' | 'zstd', pfn: number, fileOffset: number): void;
  at(base: number): DeferredPages;
}

/**
 * Where a file-backed source may plan a read instead of doing it (dump/read-plan.ts ReadPlan): which
 * bytes of which file go where in a chunk, so that the scan worker preads them itself, straight into the
 * memory it scans, and decompresses what is compressed. Offsets are into the chunk (`dst`), into the
 * file (`filePos`, -1 for zeros) and into the plan's staging area for stored (compressed) page data.
 */
export interface ReadPlanner {
  /** Claims the file for this plan; false when the plan reads another file already. */
  useFile(fd: number, path: string): boolean;
  /** len bytes of the file at filePos (-1: zeros) into the chunk at dst. */
  read(dst: number, filePos: number, len: number): void;
  /** Appends len bytes of the file (-1: zeros) to the staging area; returns where they start there. */
  stage(filePos: number, len: number): number;
  /** A page decoded from `len` staged bytes at `stageOffset` into the chunk at dst (a failure names pfn and fileOffset). */
  page(dst: number, stageOffset: number, len: number, kind: 'none' | 'zlib' | 'lzo' | 'snappy' | 'zstd', pfn: number, fileOffset: number): void;
}

export interface MemoryReader {
  /** The bytes at [addr, addr+len), or null if any of them is not in the source. */
  read(addr: bigint, len: number): Uint8Array | null;
  /** What the bytes are: 'crash rd text', 'raw dump', 'vmcore', 'kcore' ... for reports. */
  readonly description: string;
  /**
   * Optional: read straight into `out` (the scanner's shared chunk buffer) without a copy; false if absent.
   * With `defer`, compressed pages may be handed over undecompressed (the scan workers decompress them).
   */
  readInto?(addr: bigint, out: Uint8Array, defer?: DeferredPages): boolean;
  /**
   * Optional: plan the read of [addr, addr + len) into the chunk at `dst` instead of doing it (the scan
   * worker does it). False if some of it is not in the source (as readInto); null when this source
   * cannot plan reads at all (not a plain file, or a capture that must see every page).
   */
  planRead?(addr: bigint, len: number, plan: ReadPlanner, dst: number): boolean | null;
  /** Pages that turned out corrupt when a worker decompressed them (counted like the reader's own). */
  noteCorruptPages?(pages: { pfn: number; offset: number; why: string }[]): void;
}

const PAGE = PAGE_SIZE;
const PAGE_B = PAGE_SIZE_BIG;

/**
 * Sparse, word-granular memory built from text dumps (crash rd) and small raw dumps. Every 8-byte word
 * has a "known" bit, so a partly dumped page never reads as zeros.
 */
export class SparseMemory implements MemoryReader {
  readonly description: string;
  private readonly pages = new Map<bigint, { data: Uint8Array; known: Uint8Array }>();
  /** Words whose value is not in the dump but a symbolic stand-in (crash rd -S): addr -> text. */
  readonly symbolic = new Map<bigint, string>();

  constructor(description: string) {
    this.description = description;
  }

  private page(base: bigint) {
    let p = this.pages.get(base);
    if (!p) {
      p = { data: new Uint8Array(PAGE), known: new Uint8Array(PAGE / 8) };
      this.pages.set(base, p);
    }
    return p;
  }

  /** Writes whole 8-byte words; addr must be 8-aligned. */
  writeWord(addr: bigint, value: bigint): void {
    const base = addr & ~(PAGE_B - 1n);
    const off = Number(addr - base);
    const p = this.page(base);
    new DataView(p.data.buffer, p.data.byteOffset).setBigUint64(off, value, true);
    p.known[off >> 3] = 1;
  }

  write(addr: bigint, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const a = addr + BigInt(done);
      const base = a & ~(PAGE_B - 1n);
      const off = Number(a - base);
      const n = Math.min(PAGE - off, bytes.length - done);
      const p = this.page(base);
      p.data.set(bytes.subarray(done, done + n), off);
      p.known.fill(1, off >> 3, (off + n + 7) >> 3);
      done += n;
    }
  }

  read(addr: bigint, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + BigInt(done);
      const base = a & ~(PAGE_B - 1n);
      const off = Number(a - base);
      const n = Math.min(PAGE - off, len - done);
      const p = this.pages.get(base);
      if (!p) return null;
      for (let w = off >> 3; w < (off + n + 7) >> 3; w++) if (!p.known[w]) return null;
      out.set(p.data.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Page-aligned addresses of every page that holds at least one known word, ascending. */
  pageAddresses(): bigint[] {
    return [...this.pages.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
