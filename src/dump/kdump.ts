/**
 * kdump-compressed dumps ("KDUMP   ", makedumpfile's diskdump format; QEMU `dump-guest-memory -z`).
 * Layout (makedumpfile diskdump_mod.h): block 0 disk_dump_header, block 1.. kdump_sub_header, then two
 * bitmaps (present / dumped), then one page_desc per dumped page, then page data. Pages are read on
 * demand with a small cache of decompressed pages; a page that is filtered out is counted as excluded,
 * a page whose data is damaged is counted as corrupt with its file offset, and neither becomes zeros.
 */
import { MemleakError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import type { ReadPlanner } from '../util/memory.js';
import { decompressPage, type Compression, type DeferredPages } from './decompress.js';
import { MAX_VMCOREINFO, newStats, cString, type Dump, type PhysicalMemory } from './dump.js';

export const KDUMP_SIGNATURE = 'KDUMP   ';
const DUMP_DH_COMPRESSED_ZLIB = 0x1;
const DUMP_DH_COMPRESSED_LZO = 0x2;
const DUMP_DH_COMPRESSED_SNAPPY = 0x4;
const DUMP_DH_COMPRESSED_ZSTD = 0x20;
const PAGE_DESC_SIZE = 24;
const DESC_BATCH = 1024;
const CACHE_PAGES = 2048;

export function isKdump(src: ByteSource): boolean {
  if (src.size < 8) return false;
  return new TextDecoder().decode(src.read(0, 8)) === KDUMP_SIGNATURE;
}

function fail(src: ByteSource, offset: number, msg: string): never {
  throw new MemleakError('E_FORMAT', msg, { file: src.path, offset });
}

function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function openKdump(src: ByteSource, formatPrefix: string): Dump {
  const hdr = src.read(0, 464);
  const dv = new DataView(hdr.buffer);
  // utsname.machine (offset 272): the layout below is the 64-bit one; a 32-bit kernel's header has its
  // fields 12 bytes earlier (a 4-byte time_t), so say so instead of "corrupt header".
  const machine = cString(hdr.subarray(272, 272 + 65));
  if (machine !== '' && machine !== 'x86_64') {
    fail(src, 272, `kdump of a ${JSON.stringify(machine.slice(0, 20))} machine: ${/^(i[3-6]86|x86|arm|armv\d.*|mips|ppc)$/.test(machine) ? '32-bit kernels are not supported, ' : ''}only x86_64 dumps are read`);
  }
  const headerVersion = dv.getInt32(8, true);
  const blockSize = dv.getInt32(428, true);
  const subHdrSize = dv.getInt32(432, true);
  const bitmapBlocks = dv.getInt32(436, true);
  let maxMapnr = dv.getUint32(440, true);
  if (blockSize < 4096 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
    fail(src, 428, `kdump header block_size ${blockSize} is not a page size: corrupt header`);
  }
  if (subHdrSize < 1 || bitmapBlocks < 2 || bitmapBlocks % 2 !== 0) {
    fail(src, 432, `kdump header sub_hdr_size ${subHdrSize} / bitmap_blocks ${bitmapBlocks} are impossible: corrupt header`);
  }
  const sub = new DataView(src.read(blockSize, 104).buffer);
  const physBase = sub.getBigUint64(0, true);
  const offVmcoreinfoBig = sub.getBigUint64(32, true);
  const sizeVmcoreinfoBig = sub.getBigUint64(40, true);
  if (sizeVmcoreinfoBig > BigInt(MAX_VMCOREINFO)) fail(src, blockSize + 40, `kdump sub-header size_vmcoreinfo ${sizeVmcoreinfoBig}: the kernel writes at most a page; corrupt header`);
  if (sizeVmcoreinfoBig > 0n && offVmcoreinfoBig + sizeVmcoreinfoBig > BigInt(src.size)) {
    fail(src, blockSize + 32, `VMCOREINFO at offset ${offVmcoreinfoBig} (+${sizeVmcoreinfoBig}) lies past the end of the dump (${src.size}): truncated`);
  }
  const offVmcoreinfo = Number(offVmcoreinfoBig);
  const sizeVmcoreinfo = Number(sizeVmcoreinfoBig);
  // header_version >= 6 carries 64-bit max_mapnr (makedumpfile 1.5.x, for > 16 TiB machines).
  if (headerVersion >= 6) {
    const mm64 = sub.getBigUint64(96, true);
    // 2^40 pages is x86_64's whole 52-bit physical space.
    if (mm64 > 1n << 40n) fail(src, blockSize + 96, `kdump sub-header max_mapnr_64 ${mm64} is beyond any x86_64 machine: corrupt header`);
    if (mm64 > 0n) maxMapnr = Number(mm64);
  }
  let vmcoreinfo: string | null = null;
  if (sizeVmcoreinfo > 0) {
    vmcoreinfo = cString(src.read(offVmcoreinfo, sizeVmcoreinfo));
  }

  const bitmapOff = blockSize * (1 + subHdrSize);
  const bitmapLen = (bitmapBlocks / 2) * blockSize;
  if (bitmapOff + 2 * bitmapLen > src.size) fail(src, bitmapOff, `bitmaps (${2 * bitmapLen} bytes) run past the end of the dump (${src.size}): truncated`);
  if (Math.ceil(maxMapnr / 8) > bitmapLen) fail(src, 440, `max_mapnr ${maxMapnr} needs a bitmap larger than the ${bitmapLen} bytes the header gives: corrupt header`);
  const words = Math.ceil(maxMapnr / 32);
  const toWords = (b: Uint8Array) => {
    const w = new Uint32Array(words);
    new Uint8Array(w.buffer).set(b.subarray(0, Math.min(b.length, words * 4)));
    return w;
  };
  // Only the bits of max_mapnr pfns are read: bitmap_blocks is a header value, and a damaged one in a
  // dump of many GB would otherwise be an allocation of that size.
  const used = Math.min(bitmapLen, words * 4);
  const present = toWords(src.read(bitmapOff, used));
  const dumped = toWords(src.read(bitmapOff + bitmapLen, used));
  // rank[i] = number of dumped pfns before word i: the page_desc index of a pfn.
  const rank = new Uint32Array(words + 1);
  for (let i = 0; i < words; i++) {
    const stray = dumped[i] & ~present[i];
    if (stray !== 0) {
      const pfn = i * 32 + 31 - Math.clz32(stray & -stray);
      fail(src, bitmapOff + bitmapLen + i * 4, `bitmap says pfn ${pfn} is dumped but not present: corrupt bitmap`);
    }
    rank[i + 1] = rank[i] + popcount32(dumped[i]);
  }
  const nDumped = rank[words];
  // Every dump holds the kernel's own pages: a dumped bitmap of zeros was read from the wrong place.
  if (nDumped === 0) fail(src, bitmapOff + bitmapLen, `the dumped bitmap (${bitmapLen} bytes at offset ${bitmapOff + bitmapLen}) marks no page as dumped: corrupt header (bitmap_blocks ${bitmapBlocks}) or bitmap`);
  const descOff = blockSize * (1 + subHdrSize + bitmapBlocks);
  const descEnd = descOff + nDumped * PAGE_DESC_SIZE;
  if (descEnd > src.size) fail(src, descOff, `${nDumped} page descriptors run past the end of the dump (${src.size}): truncated or corrupt bitmap`);

  let compressions = 0;
  const readDesc = (idx: number) => {
    const d = new DataView(src.read(descOff + idx * PAGE_DESC_SIZE, PAGE_DESC_SIZE).buffer);
    return { offset: Number(d.getBigInt64(0, true)), size: d.getUint32(8, true), flags: d.getUint32(12, true) };
  };
  if (nDumped > 0) {
    // Cheap whole-file checks: the first page's data must follow the descriptor table (else the bitmap
    // claims more pages than were written), and the last page's data must be inside the file.
    const first = readDesc(0);
    if (first.offset < descEnd) fail(src, descOff, `first page data at offset ${first.offset} lies inside the descriptor table (ends ${descEnd}): corrupt bitmap or descriptors`);
    const last = readDesc(nDumped - 1);
    if (last.offset + last.size > src.size) {
      fail(src, descOff + (nDumped - 1) * PAGE_DESC_SIZE, `last page's data (offset ${last.offset}, ${last.size} bytes) lies past the end of the dump (${src.size}): truncated dump`);
    }
    compressions |= first.flags | last.flags;
    // Page data begins where the descriptor table ends (makedumpfile and QEMU write the zero page
    // there). If the dumped bitmap lost a bit, the table really ends 24 bytes later and those bytes are
    // one more valid descriptor: every page after the lost bit would be read from its neighbour's data.
    if (descEnd + PAGE_DESC_SIZE <= src.size) {
      const d = new DataView(src.read(descEnd, PAGE_DESC_SIZE).buffer);
      const off = d.getBigInt64(0, true);
      const size = d.getUint32(8, true);
      const flags = d.getUint32(12, true);
      const pageFlags = d.getBigUint64(16, true);
      if (off > BigInt(descEnd) && off < BigInt(src.size) && size > 0 && size <= blockSize && (flags & ~0x27) === 0 && pageFlags === 0n) {
        fail(src, descEnd, `the dumped bitmap counts ${nDumped} pages, but another page descriptor (data at offset ${off}, ${size} bytes) follows the table where page data should begin: a bit of the dumped bitmap is cleared (corrupt bitmap)`);
      }
    }
  }

  const stats = newStats();
  const cache = new Map<number, Uint8Array>();
  let descCacheStart = -1;
  let descCache: DataView | null = null;
  const corrupt = (pfn: number, offset: number, why: string) => {
    stats.corruptPages++;
    if (!stats.firstCorrupt) stats.firstCorrupt = { pfn, offset, why };
    return null;
  };
  /** The page_desc of a dumped pfn (null if filtered out): its data's file offset, size and flags. */
  const descOf = (pfn: number): { idx: number; offset: number; size: number; flags: number } | null => {
    if (pfn >= maxMapnr || ((dumped[pfn >>> 5] >>> (pfn & 31)) & 1) === 0) return null;
    const w = pfn >>> 5;
    const idx = rank[w] + popcount32(dumped[w] & ((1 << (pfn & 31)) - 1));
    if (!descCache || idx < descCacheStart || idx >= descCacheStart + DESC_BATCH) {
      descCacheStart = idx;
      const n = Math.min(DESC_BATCH, nDumped - idx);
      const b = src.read(descOff + idx * PAGE_DESC_SIZE, n * PAGE_DESC_SIZE);
      descCache = new DataView(b.buffer);
    }
    const o = (idx - descCacheStart) * PAGE_DESC_SIZE;
    return { idx, offset: Number(descCache.getBigInt64(o, true)), size: descCache.getUint32(o + 8, true), flags: descCache.getUint32(o + 12, true) };
  };
  const badDesc = (d: { offset: number; size: number }) => d.size === 0 || d.size > blockSize || d.offset < descEnd || d.offset + d.size > src.size;
  /** Which decompressor a page needs: 'none' for a stored page, null for a descriptor no decompressor fits. */
  const kindOf = (size: number, flags: number): Compression | null => {
    if (size === blockSize && (flags & 0x27) === 0) return 'none';
    if (flags & DUMP_DH_COMPRESSED_ZLIB) return 'zlib';
    if (flags & DUMP_DH_COMPRESSED_LZO) return 'lzo';
    if (flags & DUMP_DH_COMPRESSED_SNAPPY) return 'snappy';
    if (flags & DUMP_DH_COMPRESSED_ZSTD) return 'zstd';
    return size === blockSize ? 'none' : null;
  };
  /** A page's bytes from its stored data, or a counted corrupt page. */
  const decode = (pfn: number, offset: number, raw: Uint8Array, flags: number, into?: Uint8Array): Uint8Array | null => {
    const kind = kindOf(raw.length, flags);
    if (kind === null) return corrupt(pfn, offset, `page of ${raw.length} bytes with no compression flag (flags ${flags})`);
    let page: Uint8Array;
    try {
      page = decompressPage(kind, raw, blockSize, into);
    } catch (err) {
      return corrupt(pfn, offset, `${kind} data does not decompress: ${(err as Error).message}`);
    }
    if (page.length !== blockSize) return corrupt(pfn, offset, `${kind} data gives ${page.length} bytes, not ${blockSize}`);
    return page;
  };
  const readPage = (pfn: number): Uint8Array | null => {
    const hit = cache.get(pfn);
    if (hit) return hit;
    const d = descOf(pfn);
    if (!d) {
      stats.excludedPages++;
      return null;
    }
    if (badDesc(d)) return corrupt(pfn, descOff + d.idx * PAGE_DESC_SIZE, `page descriptor says ${d.size} bytes at offset ${d.offset}`);
    const page = decode(pfn, d.offset, src.read(d.offset, d.size), d.flags);
    if (!page) return null;
    if (cache.size >= CACHE_PAGES) cache.delete(cache.keys().next().value as number);
    cache.set(pfn, page);
    return page;
  };

  /**
   * Whole pages [pfn0, pfn0 + n) into dst: descriptors in batches, the pages' data in one read when it
   * is contiguous in the file (QEMU and makedumpfile write pages in pfn order), then decoded in place;
   * with `defer`, compressed pages are handed over undecoded (the scan workers decompress them).
   */
  /** The descriptors of pfns [pfn0, pfn0 + n) and the span of their data, or null (counted) if one is missing or bad. */
  const descsOf = (pfn0: number, n: number) => {
    const descs: { idx: number; offset: number; size: number; flags: number }[] = [];
    let lo = Infinity;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const d = descOf(pfn0 + i);
      if (!d) {
        stats.excludedPages++;
        return null;
      }
      if (badDesc(d)) {
        corrupt(pfn0 + i, descOff + d.idx * PAGE_DESC_SIZE, `page descriptor says ${d.size} bytes at offset ${d.offset}`);
        return null;
      }
      descs.push(d);
      lo = Math.min(lo, d.offset);
      hi = Math.max(hi, d.offset + d.size);
    }
    // The pages' data lies together (QEMU and makedumpfile write it in pfn order): one read.
    return { descs, lo, hi, together: hi - lo <= n * blockSize + blockSize };
  };
  const readPagesInto = (pfn0: number, n: number, dst: Uint8Array, defer?: DeferredPages): boolean => {
    const run = descsOf(pfn0, n);
    if (!run) return false;
    const { descs, lo, hi } = run;
    // One read when the pages' data lies together; else page by page.
    const span = run.together ? src.read(lo, hi - lo) : null;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const d = descs[i];
      const raw = span ? span.subarray(d.offset - lo, d.offset - lo + d.size) : src.read(d.offset, d.size);
      const at = i * blockSize;
      const kind = kindOf(d.size, d.flags);
      if (kind === 'none') {
        dst.set(raw, at);
        continue;
      }
      if (defer && kind !== null) {
        defer.add(at, raw, kind, pfn0 + i, d.offset);
        continue;
      }
      // Decoded in place (the struct page walk's 32k vmemmap pages: no page allocated and copied twice).
      const into = dst.subarray(at, at + blockSize);
      const page = decode(pfn0 + i, d.offset, raw, d.flags, into);
      if (!page) ok = false;
      else if (page.buffer !== into.buffer || page.byteOffset !== into.byteOffset) into.set(page);
    }
    return ok;
  };

  /** readPagesInto planned (dump/read-plan.ts): the stored data staged, each page decoded (or copied) by the worker. */
  const planPages = (pfn0: number, n: number, plan: ReadPlanner, dst: number): boolean => {
    const run = descsOf(pfn0, n);
    if (!run) return false;
    const stageRange = (offset: number, len: number) => {
      let first = -1;
      src.pieces!(offset, len, (_at, filePos, m) => {
        const s = plan.stage(filePos, m);
        if (first < 0) first = s;
      });
      return first;
    };
    const base = run.together ? stageRange(run.lo, run.hi - run.lo) : -1;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const d = run.descs[i];
      const kind = kindOf(d.size, d.flags);
      if (kind === null) {
        // As readPagesInto: counted, and the run is not whole.
        corrupt(pfn0 + i, d.offset, `page of ${d.size} bytes with no compression flag (flags ${d.flags})`);
        ok = false;
        continue;
      }
      const at = base >= 0 ? base + (d.offset - run.lo) : stageRange(d.offset, d.size);
      plan.page(dst + i * blockSize, at, d.size, kind, pfn0 + i, d.offset);
    }
    return ok;
  };

  const phys: PhysicalMemory = {
    physEnd: maxMapnr * blockSize,
    readPhys(paddr: number, len: number): Uint8Array | null {
      const out = new Uint8Array(len);
      let done = 0;
      while (done < len) {
        const a = paddr + done;
        const pfn = Math.floor(a / blockSize);
        const off = a - pfn * blockSize;
        const n = Math.min(blockSize - off, len - done);
        const page = readPage(pfn);
        if (!page) return null;
        out.set(page.subarray(off, off + n), done);
        done += n;
      }
      return out;
    },
    readPhysInto(paddr: number, dst: Uint8Array, defer?: DeferredPages): boolean {
      if (paddr % blockSize !== 0 || dst.length % blockSize !== 0) {
        const b = this.readPhys(paddr, dst.length);
        if (b) dst.set(b);
        return b !== null;
      }
      const pages = dst.length / blockSize;
      for (let i = 0; i < pages; i += DESC_BATCH) {
        const n = Math.min(DESC_BATCH, pages - i);
        if (!readPagesInto(paddr / blockSize + i, n, dst.subarray(i * blockSize, (i + n) * blockSize), defer?.at(i * blockSize))) return false;
      }
      return true;
    },
    planPhys(paddr: number, len: number, plan: ReadPlanner, dst: number): boolean | null {
      if (src.fd === undefined || !src.pieces || paddr % blockSize !== 0 || len % blockSize !== 0 || !plan.useFile(src.fd, src.path)) return null;
      const pages = len / blockSize;
      for (let i = 0; i < pages; i += DESC_BATCH) {
        if (!planPages(paddr / blockSize + i, Math.min(DESC_BATCH, pages - i), plan, dst + i * blockSize)) return false;
      }
      return true;
    },
  };
  const comp = [
    compressions & DUMP_DH_COMPRESSED_ZLIB ? 'zlib' : '',
    compressions & DUMP_DH_COMPRESSED_LZO ? 'lzo' : '',
    compressions & DUMP_DH_COMPRESSED_SNAPPY ? 'snappy' : '',
    compressions & DUMP_DH_COMPRESSED_ZSTD ? 'zstd' : '',
  ].filter(Boolean).join('+') || 'uncompressed';
  return {
    path: src.path,
    format: `kdump-compressed (${formatPrefix}${comp}, ${nDumped} of ${maxMapnr} pages dumped)`,
    live: false,
    vmcoreinfo,
    phys,
    virt: null,
    stats,
    headerPhysBase: physBase,
    extractInfo: null,
    close: () => src.close(),
  };
}
