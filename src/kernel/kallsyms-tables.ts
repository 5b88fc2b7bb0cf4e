/**
 * The kernel's compressed kallsyms tables (scripts/kallsyms.c writes them, kernel/kallsyms.c reads
 * them), decoded from a dump once their addresses are known: exported by VMCOREINFO (6.0+) or found
 * in the kernel image (kallsyms-image.ts).
 *
 * - kallsyms_names: per symbol a length, then that many token bytes; the first decoded character is
 *   the type letter. Since v6.1 (73bbb94466fd "kallsyms: support "big" kernel symbols", from the Rust
 *   series) a length with bit 7 set takes a second byte (ULEB128); before it lengths stay below 128
 *   (KSYM_NAME_LEN was 128), so reading every kernel's lengths as ULEB128 is exact.
 * - kallsyms_token_table: 256 NUL-terminated tokens; kallsyms_token_index: 256 u16 offsets into it.
 * - kallsyms_markers: the names offset of every 256th symbol: PTR (u64 on x86_64) in 4.14 and 4.19's
 *   scripts/kallsyms.c, `.long` (u32) by 5.10; both are accepted.
 * - addresses: kallsyms_offsets (s32/u32) + kallsyms_relative_base with CONFIG_KALLSYMS_BASE_RELATIVE
 *   (v4.6, 2213e9a66bb8; the only mode since v6.11), else absolute kallsyms_addresses.
 */
import { MemleakError } from '../errors.js';
import { PAGE_OFFSET_MASK, PAGE_SIZE } from '../util/page.js';
import type { KallsymsRow } from './kallsyms.js';
import { START_KERNEL_MAP, type Program } from './program.js';

/** Where a symbol's address comes from: offsets from a base, or an absolute array. */
export type AddressTable =
  | { kind: 'relative'; offsets: bigint; relativeBase: bigint }
  | { kind: 'absolute'; addresses: bigint };

export interface KallsymsTables {
  numSyms: number;
  names: bigint;
  tokenTable: bigint;
  tokenIndex: bigint;
  addresses: AddressTable;
}

/** scripts/kallsyms.c limits; a count read from memory is checked against them. */
export const MAX_KALLSYMS = 4_000_000;
const NAMES_CHUNK = 1 << 16;

/** The 256 tokens, from the token table and its index. */
export function readTokens(prog: Program, tokenTable: bigint, tokenIndex: bigint): string[] {
  const idx = prog.mustRead(tokenIndex, 512, 'kallsyms_token_index');
  const iv = new DataView(idx.buffer, idx.byteOffset);
  let maxTok = 0;
  for (let i = 0; i < 256; i++) maxTok = Math.max(maxTok, iv.getUint16(i * 2, true));
  const table = prog.read(tokenTable, maxTok + 256) ?? prog.mustRead(tokenTable, maxTok + 1, 'kallsyms_token_table');
  const dec = new TextDecoder('latin1');
  const tokens: string[] = [];
  for (let i = 0; i < 256; i++) {
    const o = iv.getUint16(i * 2, true);
    const z = table.indexOf(0, o);
    tokens.push(dec.decode(table.subarray(o, z < 0 ? table.length : z)));
  }
  return tokens;
}

/**
 * Every symbol's name with its type letter first ("Tschedule"), in table (= address) order. Names are
 * expanded as bytes into one buffer and decoded once: building 100k strings token by token makes
 * ropes that cost more to flatten later than the whole decode.
 */
export function decodeNames(prog: Program, names: bigint, num: number, tokens: string[]): string[] {
  return num === 0 ? [] : decodeNamesText(prog, names, num, tokens).split('\n');
}

/** The names joined by newlines (decodeNames before the split). */
function decodeNamesText(prog: Program, names: bigint, num: number, tokens: string[]): string {
  const b = decodeNamesBytes(prog, names, num, tokens);
  return b.toString('latin1');
}

/** The same as latin1 bytes (one byte per char of decodeNamesText). */
function decodeNamesBytes(prog: Program, names: bigint, num: number, tokens: string[]): Buffer {
  const tok = tokens.map((t) => Buffer.from(t, 'latin1'));
  let chunk: Uint8Array = new Uint8Array(0);
  let chunkStart = 0;
  let pos = 0;
  const byte = (p: number): number => {
    if (p < chunkStart || p >= chunkStart + chunk.length) {
      chunkStart = p;
      const at = names + BigInt(p);
      chunk = prog.read(at, NAMES_CHUNK) ?? prog.mustRead(at, PAGE_SIZE - Number(at & PAGE_OFFSET_MASK), 'kallsyms_names');
    }
    return chunk[p - chunkStart];
  };
  let out = Buffer.allocUnsafe(num * 32);
  let o = 0;
  for (let i = 0; i < num; i++) {
    let len = byte(pos++);
    if (len & 0x80) len = (len & 0x7f) | (byte(pos++) << 7);
    for (let k = 0; k < len; k++) {
      const t = tok[byte(pos++)];
      if (o + t.length + 1 > out.length) {
        const bigger = Buffer.allocUnsafe(out.length * 2);
        out.copy(bigger, 0, 0, o);
        out = bigger;
      }
      for (let j = 0; j < t.length; j++) out[o++] = t[j];
    }
    out[o++] = 0x0a; // names never hold a newline
  }
  return out.subarray(0, o - 1);
}

export type AddressOf = (i: number) => bigint;

/** A kernel symbol whose address the dump gives without kallsyms. */
export interface Anchor {
  name: string;
  addr: bigint;
}

/** Where in the names each anchor occurs (a name may occur more than once: static symbols). */
export interface AnchorsAt {
  at: [number, Anchor][];
  names: string[];
}

export function locateAnchors(names: string[], anchors: Anchor[]): AnchorsAt {
  const want = new Map(anchors.map((a) => [a.name, a]));
  // Only names of an anchor's length (plus the type letter) are cut and looked up.
  const lengths = new Set(anchors.map((a) => a.name.length + 1));
  const at: [number, Anchor][] = [];
  for (let i = 0; i < names.length; i++) {
    if (!lengths.has(names[i].length)) continue;
    const a = want.get(names[i].slice(1));
    if (a !== undefined) at.push([i, a]);
  }
  return { at, names: anchors.map((a) => a.name) };
}

/** The address reader, and the anchors it put where the dump says. */
export interface Addresses {
  addrOf: AddressOf;
  agreed: string[];
}

/**
 * The address of symbol i. Relative tables come in two flavours: with CONFIG_KALLSYMS_ABSOLUTE_PERCPU
 * (x86_64 SMP) non-negative offsets are absolute (per-CPU symbols) and negative ones count down from
 * relative_base - 1; without it every offset is an unsigned distance from relative_base. The flavour
 * is the one that puts every anchor (VMCOREINFO's symbols) where the dump says; several anchors, since
 * one alone cannot tell a table shifted by one entry (_text and _stext share an address). Null if no
 * flavour does, or no anchor is among the names.
 */
export function addressReader(prog: Program, t: AddressTable, names: string[] | number, anchors: AnchorsAt): Addresses | null {
  const num = typeof names === 'number' ? names : names.length;
  const at = anchors.at;
  if (at.length === 0) return null;
  const agreeing = (f: AddressOf): Addresses | null => {
    // A name may occur more than once (static symbols): one of its entries must be at the address.
    const ok = new Set<string>();
    for (const [i, a] of at) if (f(i) === a.addr) ok.add(a.name);
    for (const [, a] of at) if (!ok.has(a.name)) return null;
    return { addrOf: f, agreed: [...ok] };
  };
  if (t.kind === 'absolute') {
    const bytes = prog.read(t.addresses, num * 8);
    if (!bytes) return null;
    const v = new DataView(bytes.buffer, bytes.byteOffset);
    return agreeing((i) => v.getBigUint64(i * 8, true));
  }
  const offs = prog.read(t.offsets, num * 4);
  const baseBytes = prog.read(t.relativeBase, 8);
  if (!offs || !baseBytes) return null;
  const ov = new DataView(offs.buffer, offs.byteOffset);
  const base = new DataView(baseBytes.buffer, baseBytes.byteOffset).getBigUint64(0, true);
  const absPercpu = (i: number) => {
    const o = ov.getInt32(i * 4, true);
    return o >= 0 ? BigInt(o) : base - 1n - BigInt(o);
  };
  const relative = (i: number) => base + BigInt(ov.getUint32(i * 4, true));
  return agreeing(absPercpu) ?? agreeing(relative);
}

/**
 * The kernel's symbols as rows. Per-CPU symbols ('A' in /proc/kallsyms) are not addresses and are left
 * out, as Kallsyms.parse leaves them out of a file.
 */
export function kallsymsRows(names: string[], addrOf: AddressOf): KallsymsRow[] {
  const rows: KallsymsRow[] = [];
  for (let i = 0; i < names.length; i++) {
    const t = names[i][0];
    const a = addrOf(i);
    if (t === 'A' || t === 'a' || a < 0xffff800000000000n) continue;
    rows.push({ a, t, n: names[i].slice(1), m: null });
  }
  return rows;
}

/** Decodes tables at known addresses, checked against the dump's anchors; `where` names them in errors. */
export function decodeKallsymsTables(prog: Program, t: KallsymsTables, where: string): { rows: KallsymsRow[]; agreed: string[] } {
  if (t.numSyms === 0 || t.numSyms > MAX_KALLSYMS) {
    throw new MemleakError('E_FORMAT', `kallsyms_num_syms is ${t.numSyms} in ${where}: not a kernel symbol table`, { file: prog.dump.path });
  }
  const tokens = readTokens(prog, t.tokenTable, t.tokenIndex);
  const names = decodeNames(prog, t.names, t.numSyms, tokens);
  expectNamesDecode(names, tokens, prog);
  const anchors = locateAnchors(names, kernelAnchors(prog));
  if (anchors.at.length === 0) {
    throw new MemleakError('E_FORMAT', `the dump's kallsyms tables decode ${t.numSyms} names but none is ${anchors.names.join(', ')} (VMCOREINFO has them): kallsyms_names or kallsyms_token_table is damaged`, {
      file: prog.dump.path,
    });
  }
  const got = addressReader(prog, t.addresses, names, anchors);
  if (!got) {
    throw new MemleakError(
      'E_FORMAT',
      `${where}: the ${t.numSyms} symbols do not put ${anchors.names.join(', ')} where VMCOREINFO says: tables damaged or not this kernel's`,
      { file: prog.dump.path },
    );
  }
  return { rows: kallsymsRows(names, got.addrOf), agreed: got.agreed };
}

/**
 * What Kallsyms.fromRows(decodeKallsymsTables(...).rows).addressOf(name) answers for a few names, for
 * checking a kallsyms file against the dump: the names are decoded into one string and only the wanted
 * lines are looked at, where building 90k rows, their bigints and a table cost ~60 ms. Null when that
 * decode would fail or when the names are anything but plain (then the full decode decides).
 */
export function lookupInKallsymsTables(prog: Program, t: KallsymsTables, wanted: string[]): Map<string, bigint> | null {
  const num = t.numSyms;
  if (num === 0 || num > MAX_KALLSYMS) return null;
  const tokens = readTokens(prog, t.tokenTable, t.tokenIndex);
  const all = decodeNamesBytes(prog, t.names, num, tokens);
  const anchorList = kernelAnchors(prog);
  // The names looked for, by length: each line is compared only with the names of its length.
  const names = [...new Set([...anchorList.map((a) => a.name), ...wanted])].filter((n) => n !== '' && Buffer.from(n, 'latin1').toString('latin1') === n);
  const byLength: { name: string; bytes: Buffer; lines: number[] }[][] = [];
  for (const name of names) (byLength[name.length] ??= []).push({ name, bytes: Buffer.from(name, 'latin1'), lines: [] });
  // One pass over the lines: how many names expectNamesDecode would call garbage (a type letter, then
  // [A-Za-z0-9_.$]+), and where the names looked for are (after their type letter).
  const starts = new Int32Array(num);
  let lines = 0;
  let bad = 0;
  let lineStart = 0;
  for (let i = 0; i <= all.length; i++) {
    if (i < all.length && all[i] !== 10) continue;
    if (lines === num) return null;
    starts[lines] = lineStart;
    let good = i - lineStart >= 2 && NAME_FIRST[all[lineStart]] === 1;
    for (let j = lineStart + 1; good && j < i; j++) good = NAME_REST[all[j]] === 1;
    if (!good) bad++;
    const candidates = i - lineStart >= 1 ? byLength[i - lineStart - 1] : undefined;
    if (candidates) {
      for (const c of candidates) {
        let k = 0;
        while (k < c.bytes.length && all[lineStart + 1 + k] === c.bytes[k]) k++;
        if (k === c.bytes.length) c.lines.push(lines);
      }
    }
    lines++;
    lineStart = i + 1;
  }
  if (lines !== num || bad > num / 100) return null;
  const linesOf = new Map<string, number[]>();
  for (const list of byLength) for (const c of list ?? []) linesOf.set(c.name, c.lines);
  const at: [number, Anchor][] = [];
  for (const a of anchorList) for (const i of linesOf.get(a.name) ?? []) at.push([i, a]);
  at.sort((x, y) => x[0] - y[0]);
  if (at.length === 0) return null;
  const got = addressReader(prog, t.addresses, num, { at, names: anchorList.map((a) => a.name) });
  if (!got) return null;
  const out = new Map<string, bigint>();
  for (const name of wanted) {
    let best: bigint | null = null;
    for (const i of linesOf.get(name) ?? []) {
      const type = all[starts[i]];
      const a = got.addrOf(i);
      if (type === 0x41 || type === 0x61 || a < 0xffff800000000000n) continue;
      if (best === null || a < best) best = a;
    }
    if (best !== null) out.set(name, best);
  }
  return out;
}

/** Byte classes of expectNamesDecode's /^[A-Za-z?][A-Za-z0-9_.$]+$/. */
const NAME_FIRST = new Uint8Array(256);
const NAME_REST = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  NAME_FIRST[c] = alpha || c === 63 ? 1 : 0;
  NAME_REST[c] = alpha || (c >= 48 && c <= 57) || c === 95 || c === 46 || c === 36 ? 1 : 0;
}

/**
 * Names decoded from damaged tables (a zeroed stretch of kallsyms_token_table gives empty tokens) are
 * garbage: a type letter then a C identifier is what every kernel symbol is (Rust symbols too, mangled).
 */
function expectNamesDecode(names: string[], tokens: string[], prog: Program): void {
  const NAME = /^[A-Za-z?][A-Za-z0-9_.$]+$/;
  let bad = 0;
  let firstBad: string | null = null;
  for (const n of names) {
    if (NAME.test(n)) continue;
    bad++;
    firstBad ??= n;
  }
  if (bad > names.length / 100) {
    const empty = tokens.filter((t) => t === '').length;
    throw new MemleakError(
      'E_FORMAT',
      `the dump's kallsyms tables decode to garbage: ${bad} of ${names.length} names are no symbol names (first ${JSON.stringify(firstBad!.slice(0, 40))})` +
        (empty ? `; ${empty} of 256 entries of kallsyms_token_table are empty (zeroed)` : '') + ': the tables are damaged; pass --kallsyms FILE',
      { file: prog.dump.path },
    );
  }
}


/** __START_KERNEL (arch/x86/include/asm/page_64_types.h): __START_KERNEL_map + CONFIG_PHYSICAL_START (default 16 MiB). */
const START_KERNEL = 0xffffffff81000000n;

/**
 * Kernel symbols whose addresses the dump gives without kallsyms: VMCOREINFO's SYMBOL()s in the kernel
 * image (_stext, init_uts_ns, node_online_map, ...: Documentation/admin-guide/kdump/vmcoreinfo.rst; not
 * mem_section, whose entry is the array's address, outside the image), else _text = __START_KERNEL +
 * KERNELOFFSET.
 */
export function kernelAnchors(prog: Program): Anchor[] {
  const anchors: Anchor[] = [];
  for (const [name, addr] of prog.info.symbols) if (addr >= START_KERNEL_MAP) anchors.push({ name, addr });
  if (anchors.length === 0) anchors.push({ name: '_text', addr: kernelTextStart(prog) });
  return anchors;
}

/** Where the kernel's text starts: VMCOREINFO's _stext, else __START_KERNEL moved by KASLR. */
export function kernelTextStart(prog: Program): bigint {
  return prog.vmcoreSymbol('_stext') ?? START_KERNEL + prog.kaslrOffset;
}
