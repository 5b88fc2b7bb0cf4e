/**
 * The kallsyms tables found in the kernel image inside a dump, for kernels whose VMCOREINFO does not
 * export their addresses (before 6.0). Found from their structure, the way tools that rebuild symbol
 * tables from raw kernel images do (vmlinux-to-elf):
 *
 * 1. kallsyms_token_table: every byte that occurs in a symbol name stands for itself, so tokens
 *    0x30..0x39 are "0".."9" and the table holds the bytes "0\0" "1\0" .. "9\0". 48 tokens back is its
 *    start; after its 256 tokens (aligned) comes kallsyms_token_index, whose 256 u16 must be exactly the
 *    tokens' offsets: a 512-byte check nothing else passes.
 * 2. kallsyms_markers: u32 (5.10+) or u64 (4.x) names offsets of every 256th symbol, 0 first, strictly
 *    increasing by 256 names' worth of bytes. They end at the token table, or at kallsyms_seqs_of_names
 *    (v6.2 "kallsyms: Improve the performance of kallsyms_lookup_name()"; Debian's 6.1 has it too),
 *    which sits between them until v6.4 ("scripts/kallsyms: change the output order").
 * 3. kallsyms_num_syms, then kallsyms_names, which end (aligned) where the markers start: a count that
 *    fits the number of markers, whose names walk lands on every marker and ends at the markers.
 * 4. addresses: up to v6.3 kallsyms_offsets + kallsyms_relative_base (or kallsyms_addresses) precede
 *    kallsyms_num_syms; since v6.4 they follow kallsyms_token_index. The flavour whose _stext is
 *    VMCOREINFO's _stext is the one.
 * Then every VMCOREINFO SYMBOL() in the kernel image must sit where the decoded table puts it.
 *
 * The kernel image is __START_KERNEL_map + phys_base (Program.translate); KASLR moves it by
 * KERNELOFFSET, so the search runs between _stext and the lowest VMCOREINFO data symbol (.rodata lies
 * between .text and .data in arch/x86/kernel/vmlinux.lds.S), from the top, where the tables are near.
 */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { PAGE_SIZE } from '../util/page.js';
import type { KallsymsRow } from './kallsyms.js';
import {
  addressReader, decodeNames, kallsymsRows, kernelAnchors, kernelTextStart, locateAnchors, MAX_KALLSYMS, readTokens,
  type Addresses, type AddressTable, type Anchor, type AnchorsAt, type KallsymsTables,
} from './kallsyms-tables.js';
import { START_KERNEL_MAP, type Program } from './program.js';

/** "0\0" .. "9\0": tokens 0x30..0x39 of every kernel's token table. */
const DIGIT_TOKENS = new Uint8Array([...'0123456789'].flatMap((c) => [c.charCodeAt(0), 0]));
const FIRST_DIGIT_TOKEN = 0x30;
const PAGE = PAGE_SIZE;
const SCAN_CHUNK = 1 << 20;
/** Without a VMCOREINFO data symbol to stop at, search this far above _stext. */
const MAX_IMAGE = 128 << 20;
/** KSYM_NAME_LEN is 512 since v6.1: an entry is at most 2 length bytes + 511 token bytes. */
const MAX_ENTRY = 2 + 511;
/** Smallest gap between markers: 256 names of a type letter + one token each. */
const MIN_MARKER_GAP = 256 * 2;
const MAX_MARKER_GAP = 256 * MAX_ENTRY;
/** A kernel has tens of thousands of symbols; fewer than 8 markers is not a kernel's table. */
const MIN_MARKERS = 8;

export interface ImageKallsyms {
  rows: KallsymsRow[];
  tables: KallsymsTables;
  markers: bigint;
  /** u64 (4.x: PTR) or u32 (5.x+: .long). */
  markerSize: 4 | 8;
  /** "v6.3 and older order" or "v6.4+ order": where the address table was. */
  layout: string;
  /** VMCOREINFO symbols that the decoded table placed exactly where VMCOREINFO says. */
  agreed: string[];
  /** Bytes of the image the search looked at. */
  searched: number;
}

/**
 * Finds, decodes and checks the tables. Null if the image holds no token table (not a kernel image
 * with CONFIG_KALLSYMS, or those pages are not in the dump); throws E_KALLSYMS if tables were found but
 * none decodes to this kernel's symbols.
 */
export function findKallsymsInImage(prog: Program): ImageKallsyms | null {
  const anchors = kernelAnchors(prog);
  const lo = kernelTextStart(prog) & ~BigInt(PAGE - 1);
  const hi = imageSearchEnd(prog, lo);
  const rejected: string[] = [];
  let searched = 0;
  let found: Found | null = null;
  search: for (let top = hi; top > lo; top -= BigInt(SCAN_CHUNK)) {
    const start = top - BigInt(SCAN_CHUNK) > lo ? top - BigInt(SCAN_CHUNK) : lo;
    const buf = readSparse(prog, start, Number(top - start) + DIGIT_TOKENS.length - 1);
    searched += Number(top - start);
    // Nearest the top first: the tables sit late in .rodata.
    for (let at = lastIndexOf(buf, DIGIT_TOKENS, buf.length); at >= 0; at = lastIndexOf(buf, DIGIT_TOKENS, at - 1)) {
      const tokenTable = tokenTableAt(prog, start + BigInt(at));
      if (!tokenTable) continue;
      const got = tablesBefore(prog, tokenTable.table, tokenTable.index, anchors);
      if (typeof got !== 'string') {
        found = got;
        break search;
      }
      rejected.push(`token table at ${hex(tokenTable.table)}: ${got}`);
    }
  }
  if (!found) {
    if (rejected.length === 0) return null;
    throw new MemleakError('E_KALLSYMS', `kallsyms tables in the kernel image do not decode to this kernel's symbols (${rejected.slice(0, 3).join('; ')})`, {
      file: prog.dump.path,
    });
  }
  // The decoder read the names, tokens and addresses the normal way; the markers and the count were
  // only searched: read them too, so that an extract keeps everything the search needs to find them again.
  prog.read(found.markers.at, found.markers.values.length * found.markers.size);
  prog.read(found.numSymsAt, Number(found.tables.names - found.numSymsAt));
  return { rows: found.rows, tables: found.tables, markers: found.markers.at, markerSize: found.markers.size, layout: found.layout, agreed: found.agreed, searched };
}

/**
 * A read for searching: it neither captures pages (an extract keeps only what the analysis used, not
 * the megabytes searched past) nor counts pages the dump lacks as "not analysed".
 */
function peek(prog: Program, addr: bigint, len: number): Uint8Array | null {
  const excluded = prog.dump.stats.excludedPages;
  try {
    return prog.capture ? prog.capture.paused(() => prog.read(addr, len)) : prog.read(addr, len);
  } finally {
    prog.dump.stats.excludedPages = excluded;
  }
}

/**
 * The lowest VMCOREINFO variable above _stext in the kernel image mapping: .data, above .rodata. The
 * kallsyms_* symbols of 6.0+ are .rodata themselves and do not bound anything.
 */
function imageSearchEnd(prog: Program, lo: bigint): bigint {
  let hi = lo + BigInt(MAX_IMAGE);
  for (const [name, v] of prog.info.symbols) {
    if (name.startsWith('kallsyms_') || v >= hi || v <= lo + BigInt(PAGE) || v < START_KERNEL_MAP) continue;
    hi = v;
  }
  return (hi + BigInt(PAGE - 1)) & ~BigInt(PAGE - 1);
}

/** [addr, addr+len) with pages the dump does not hold as zeros: for searching only, never decoding. */
function readSparse(prog: Program, addr: bigint, len: number): Uint8Array {
  const whole = peek(prog, addr, len);
  if (whole) return whole;
  const out = new Uint8Array(len);
  for (let off = 0; off < len; ) {
    const a = addr + BigInt(off);
    const n = Math.min(len - off, PAGE - Number(a & BigInt(PAGE - 1)));
    const page = peek(prog, a, n);
    if (page) out.set(page, off);
    off += n;
  }
  return out;
}

function lastIndexOf(buf: Uint8Array, pat: Uint8Array, from: number): number {
  return from < 0 ? -1 : Buffer.from(buf.buffer, buf.byteOffset, buf.length).lastIndexOf(pat, from);
}

/**
 * The token table whose token 0x30 is at `digits`, and its index, if the index proves it. Token 0x30 is
 * token index[0x30] of the table, and the index follows token 255's NUL at the next ALGN boundary
 * (.balign 8 before v6.4, 4 since): each alignment gives one candidate start, and all 256 offsets
 * must match.
 */
function tokenTableAt(prog: Program, digits: bigint): { table: bigint; index: bigint } | null {
  const bytes = readSparse(prog, digits, 2 * PAGE);
  let end = 0;
  for (let t = FIRST_DIGIT_TOKEN; t < 256; t++) {
    const z = bytes.indexOf(0, end);
    if (z <= end) return null;
    end = z + 1;
  }
  for (const align of [8, 4, 2]) {
    const index = digits + BigInt(end);
    const at = index + ((BigInt(align) - (index % BigInt(align))) % BigInt(align));
    const idx = readSparse(prog, at, 512);
    const iv = new DataView(idx.buffer, idx.byteOffset, 512);
    const table = digits - BigInt(iv.getUint16(FIRST_DIGIT_TOKEN * 2, true));
    const tokens = readSparse(prog, table, Number(at - table));
    let o = 0;
    let ok = iv.getUint16(0, true) === 0;
    for (let t = 0; t < 256 && ok; t++) {
      ok = iv.getUint16(t * 2, true) === o;
      const z = tokens.indexOf(0, o);
      ok &&= z > o;
      o = z + 1;
    }
    if (ok && table + BigInt(o) <= at && at - (table + BigInt(o)) < BigInt(align)) return { table, index: at };
  }
  return null;
}

interface MarkerRun {
  at: bigint;
  size: 4 | 8;
  values: number[];
}

interface Found {
  rows: KallsymsRow[];
  tables: KallsymsTables;
  markers: MarkerRun;
  numSymsAt: bigint;
  layout: string;
  agreed: string[];
}

/** Markers, names and addresses belonging to the token table at `tokenTable`; a reason if none. */
function tablesBefore(prog: Program, tokenTable: bigint, tokenIndex: bigint, anchors: Anchor[]): Found | string {
  let why = 'no kallsyms_markers before it';
  // The markers end at the token table, or kallsyms_seqs_of_names (3 bytes a symbol) lies between.
  for (const span of [1 << 20, 16 << 20]) {
    const start = tokenTable - BigInt(span);
    const buf = readSparse(prog, start, span);
    for (const run of markerRuns(buf, start)) {
      for (let drop = 0; drop <= 2 && run.values.length - drop >= MIN_MARKERS; drop++) {
        const markers = { ...run, values: run.values.slice(0, run.values.length - drop) };
        const names = namesBefore(prog, markers);
        if (!names) continue;
        const decoded = decodeNames(prog, names.names, names.numSyms, readTokens(prog, tokenTable, tokenIndex));
        const addr = addressTableOf(prog, names.numSymsAt, decoded, tokenIndex, locateAnchors(decoded, anchors));
        if (!addr) {
          why = `${names.numSyms} names at ${hex(names.names)}, but no address table puts ${anchors.map((a) => a.name).join(', ')} where VMCOREINFO says`;
          continue;
        }
        return {
          rows: kallsymsRows(decoded, addr.addrOf),
          tables: { numSyms: names.numSyms, names: names.names, tokenTable, tokenIndex, addresses: addr.table },
          markers,
          numSymsAt: names.numSymsAt,
          layout: addr.layout,
          agreed: addr.agreed,
        };
      }
    }
  }
  return why;
}

/**
 * Candidate marker arrays in buf (which starts at `base`), nearest its end first: a 0, then at least
 * MIN_MARKERS-1 strictly increasing values with plausible gaps, as u32 or as u64 with a zero high half.
 */
function* markerRuns(buf: Uint8Array, base: bigint): Generator<MarkerRun> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  for (const size of [4, 8] as const) {
    const count = Math.floor(buf.length / size);
    const val = (j: number) => (size === 4 || dv.getUint32(j * 8 + 4, true) === 0 ? dv.getUint32(j * size, true) : -1);
    let top = -1;
    for (let j = count - 1; j >= 0; j--) {
      const x = val(j);
      if (top < 0) {
        if (x > 0) top = j;
        continue;
      }
      const gap = val(j + 1) - x;
      if (x >= 0 && gap >= MIN_MARKER_GAP && gap <= MAX_MARKER_GAP) {
        if (x === 0) {
          if (top - j + 1 >= MIN_MARKERS) {
            const values: number[] = [];
            for (let k = j; k <= top; k++) values.push(val(k));
            yield { at: base + BigInt(j * size), size, values };
          }
          top = -1;
        }
        continue;
      }
      top = x > 0 ? j : -1;
    }
  }
}

/**
 * kallsyms_num_syms and kallsyms_names for these markers: the count (PTR or .long) sits right before the
 * names, fits the number of markers, and walking that many names passes every marker and ends at the
 * markers (up to alignment).
 */
function namesBefore(prog: Program, m: MarkerRun): { numSymsAt: bigint; numSyms: number; names: bigint } | null {
  const nm = m.values.length;
  const last = m.values[nm - 1];
  // names start = markers - (names length) with names length in [last + 2, last + 256 * MAX_ENTRY + 8].
  const hiStart = m.at - BigInt(last + 2);
  const loStart = m.at - BigInt(last + MAX_MARKER_GAP + 8);
  const winStart = (loStart - 8n) & ~3n;
  const win = readSparse(prog, winStart, Number(hiStart - winStart));
  const wv = new DataView(win.buffer, win.byteOffset, win.length);
  const minN = (nm - 1) * 256 + 1;
  const maxN = nm * 256;
  let namesBytes: Uint8Array | null = null;
  for (let p = win.length - 4 - (win.length % 4); p >= 0; p -= 4) {
    const n = wv.getUint32(p, true);
    if (n < minN || n > maxN || n > MAX_KALLSYMS) continue;
    for (const gap of [4, 8]) {
      const names = winStart + BigInt(p + gap);
      if (names > hiStart) continue;
      namesBytes ??= readSparse(prog, loStart, Number(m.at - loStart));
      const walk = walkNames(namesBytes, Number(names - loStart), n, m.values);
      const end = loStart + BigInt(walk);
      if (walk >= 0 && end <= m.at && m.at - end < 8n) return { numSymsAt: winStart + BigInt(p), numSyms: n, names };
    }
  }
  return null;
}

/** Walks n names from `from`; the end offset if every 256th starts at its marker, else -1. */
function walkNames(bytes: Uint8Array, from: number, n: number, markers: number[]): number {
  // A wrong start fails at the first or second marker: cheap to reject.
  let pos = from;
  for (let i = 0; i < n; i++) {
    if ((i & 0xff) === 0 && pos - from !== markers[i >> 8]) return -1;
    if (pos >= bytes.length) return -1;
    let len = bytes[pos++];
    if (len & 0x80) len = (len & 0x7f) | (bytes[pos++] << 7);
    if (len === 0) return -1;
    pos += len;
  }
  return pos;
}

/** The address table that puts the anchors where VMCOREINFO says, in either output order. */
function addressTableOf(
  prog: Program, numSymsAt: bigint, names: string[], tokenIndex: bigint, anchors: AnchorsAt,
): (Addresses & { table: AddressTable; layout: string }) | null {
  const n = names.length;
  const before = numSymsAt - 8n; // kallsyms_relative_base (PTR) right before kallsyms_num_syms
  const after = tokenIndex + 512n; // v6.4+: right after kallsyms_token_index
  const offsetsEnd = after + BigInt(4 * n);
  const candidates: [AddressTable, string][] = [
    [{ kind: 'relative', offsets: before - BigInt(4 * n), relativeBase: before }, 'v6.3 and older order'],
    [{ kind: 'relative', offsets: before - BigInt(4 * n) - 4n, relativeBase: before }, 'v6.3 and older order'],
    [{ kind: 'absolute', addresses: numSymsAt - BigInt(8 * n) }, 'v6.3 and older order, absolute addresses'],
    [{ kind: 'relative', offsets: after, relativeBase: offsetsEnd }, 'v6.4+ order'],
    [{ kind: 'relative', offsets: after, relativeBase: (offsetsEnd + 7n) & ~7n }, 'v6.4+ order'],
    [{ kind: 'absolute', addresses: after }, 'v6.4+ order, absolute addresses'],
  ];
  for (const [table, layout] of candidates) {
    const got = addressReader(prog, table, names, anchors);
    if (got) return { ...got, table, layout };
  }
  return null;
}
