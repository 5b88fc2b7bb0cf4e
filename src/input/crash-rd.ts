/**
 * crash `rd -64` (with or without the ASCII column) and `rd -S` text. Lines are
 * `ADDR:  WORD WORD   ASCII` with words at fixed columns (crash's memory.c display_memory); `rd -S`
 * prints symbols (`demo_conn_ops`, `sym+24`) and slab pointers (`[kmalloc-64]`) instead of the hex.
 * Concatenated dumps are fine: every line carries its own address.
 */
import { MemleakError } from '../errors.js';
import { SparseMemory } from '../util/memory.js';

// Values written for rd -S words until symbols are resolved; see scan/tokens.ts for how they score.
import { OPAQUE_SLAB_POINTER_HI, OPAQUE_SYMBOL_HI } from '../util/opaque-words.js';

export interface RdParseStats {
  lines: number;
  words: number;
  symbolicWords: number;
  slabPointerWords: number;
  /** crash's own errors between the lines (`rd: page excluded: kernel virtual address: ...`), skipped. */
  crashErrors: { count: number; first: string | null; firstLine: number | null };
}

const HEX16 = /^[0-9a-f]{16}$/;
const LINE = /^\s*([0-9a-f]{1,16}):\s(.*)$/;
const SYMBOL_WORD = /^[A-Za-z_.$][A-Za-z0-9_.$]*(\+\d+)?$/;
const SLAB_WORD = /^\[[^\]\s]+\]$/;
/** crash's error(INFO, ...) lines: an rd over many pages prints one for each page it cannot read. */
const CRASH_MESSAGE = /^(rd: |crash: |WARNING: )/;

function otherWidth(tok: string): number | null {
  if (/^[0-9a-f]{8}$/.test(tok)) return 32;
  if (/^[0-9a-f]{4}$/.test(tok)) return 16;
  if (/^[0-9a-f]{2}$/.test(tok)) return 8;
  return null;
}

/** True when the text looks like crash rd output (first meaningful line). */
export function looksLikeRd(text: string): boolean {
  for (const line of text.split('\n', 20)) {
    if (line.trim() === '' || line.startsWith('crash>') || CRASH_MESSAGE.test(line)) continue;
    return LINE.test(line);
  }
  return false;
}

export function parseCrashRd(text: string, file: string, mem: SparseMemory): RdParseStats {
  const stats: RdParseStats = { lines: 0, words: 0, symbolicWords: 0, slabPointerWords: 0, crashErrors: { count: 0, first: null, firstLine: null } };
  const opaqueIds = new Map<string, number>();
  const opaque = (hi: number, text: string): bigint => {
    let id = opaqueIds.get(text);
    if (id === undefined) {
      id = opaqueIds.size + 1;
      opaqueIds.set(text, id);
    }
    return (BigInt(hi) << 32n) | BigInt(id);
  };
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end).replace(/\r$/, '');
    pos = end + 1;
    lineNo++;
    if (line.trim() === '' || line.startsWith('crash>')) continue;
    if (CRASH_MESSAGE.test(line)) {
      // The page it names is absent from the file, as it is from the dump; the caller warns.
      if (stats.crashErrors.count++ === 0) {
        stats.crashErrors.first = line.trim().slice(0, 120);
        stats.crashErrors.firstLine = lineNo;
      }
      continue;
    }
    const m = LINE.exec(line);
    if (!m) throw new MemleakError('E_FORMAT', `not a crash rd line: ${JSON.stringify(line.slice(0, 60))}`, { file, line: lineNo });
    // crash pads addresses to the word size: 8 digits is a 32-bit kernel (x86_64 prints 16).
    if (m[1].length <= 8) {
      throw new MemleakError('E_FORMAT', `address ${m[1]} has ${m[1].length} hex digits: this is crash rd output of a 32-bit kernel; 32-bit kernels are not supported, only x86_64`, { file, line: lineNo });
    }
    const addr = BigInt('0x' + m[1]);
    if (addr & 7n) {
      throw new MemleakError('E_FORMAT', `rd address ${m[1]} is not 8-byte aligned: crash rd -64 of an aligned address prints aligned lines, so this line was edited or damaged (or the dump started at an unaligned address: dump the pages again from the slab's page address)`, { file, line: lineNo });
    }
    const rest = m[2].replace(/^ /, '');
    const { words, ascii } = splitWords(rest);
    if (words.length === 0 || words[0] === '') throw new MemleakError('E_FORMAT', 'rd line has no words (truncated?)', { file, line: lineNo });
    // rd -32/-16/-8 print 4/8/16 narrow words a line; a lone short word is a truncated -64 line.
    const width = otherWidth(words[0]);
    if (width !== null && words.length >= 2 && otherWidth(words[1]) === width) {
      throw new MemleakError('E_FORMAT', `crash rd -${width} output is not supported: dump the pages again with rd -64`, { file, line: lineNo });
    }
    if (words.length > 2) throw new MemleakError('E_FORMAT', `rd line has ${words.length} words; rd -64 prints two`, { file, line: lineNo });
    if (ascii !== null) checkAscii(words, ascii, file, lineNo);
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      const a = addr + BigInt(i * 8);
      if (HEX16.test(w)) {
        mem.writeWord(a, BigInt('0x' + w));
      } else if (/^[0-9A-Za-z]{16}$/.test(w)) {
        // 16 characters in a word column without an underscore: a damaged hex word, not a symbol.
        throw new MemleakError('E_FORMAT', `not a hex word: ${JSON.stringify(w)}`, { file, line: lineNo });
      } else if (SLAB_WORD.test(w)) {
        mem.writeWord(a, opaque(OPAQUE_SLAB_POINTER_HI, w));
        mem.symbolic.set(a, w);
        stats.slabPointerWords++;
      } else if (SYMBOL_WORD.test(w) && !/^[0-9a-f]+$/.test(w)) {
        mem.writeWord(a, opaque(OPAQUE_SYMBOL_HI, w));
        mem.symbolic.set(a, w);
        stats.symbolicWords++;
      } else {
        if (/^[0-9a-f]+$/.test(w)) {
          throw new MemleakError('E_FORMAT', `truncated rd word ${JSON.stringify(w)} (expected 16 hex digits)`, { file, line: lineNo });
        }
        throw new MemleakError('E_FORMAT', `not a memory word: ${JSON.stringify(w)}`, { file, line: lineNo });
      }
      stats.words++;
    }
    stats.lines++;
  }
  if (stats.lines === 0) throw new MemleakError('E_FORMAT', 'no rd lines in file', { file });
  return stats;
}

/**
 * The words of one line. rd -64 puts two 16-digit words at fixed columns and then, after two more
 * spaces, 16 ASCII characters that may themselves contain spaces and hex digits, so the ASCII column is
 * cut off by position, never by splitting on white space. rd -S has no ASCII column.
 */
function splitWords(rest: string): { words: string[]; ascii: string | null } {
  const first = rest.slice(0, 16);
  if (HEX16.test(first)) {
    const words = [first];
    const second = rest.slice(17, 33);
    if (rest[16] !== undefined && rest[16] !== ' ') return { words: [rest.split(/\s+/)[0]], ascii: null }; // word longer than 16: bad
    if (HEX16.test(second)) {
      words.push(second);
      const tail = rest.slice(33);
      // rd -64: "   ASCII"; rd -S: trailing space only.
      if (tail.trim() === '') return { words, ascii: null };
      if (!tail.startsWith('   ')) return { words: [...words, tail.trim().split(/\s+/)[0]], ascii: null };
      return { words, ascii: tail.slice(3) };
    }
    if (second.trim() === '') return { words, ascii: null }; // short last line: one word, padding, maybe ASCII
    // rd -S: the second word is a symbol or [cache]; no ASCII column follows.
    return { words: [...words, ...rest.slice(17).trim().split(/\s+/)], ascii: null };
  }
  // rd -S line that starts with a symbol or [cache] word, or a malformed line.
  return { words: rest.trim().split(/\s+/), ascii: null };
}

/** The ASCII column crash prints for these words: bytes in memory order, '.' for non-printables. */
function asciiOf(words: string[]): string {
  let s = '';
  for (const w of words) {
    for (let i = 7; i >= 0; i--) {
      const b = parseInt(w.slice(2 * i, 2 * i + 2), 16);
      s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    }
  }
  return s;
}

/**
 * crash renders the ASCII column from the same bytes, so it must agree with the words: a mismatch is a
 * damaged line, a shorter column a truncated one (unless only spaces are missing, which editors trim).
 */
function checkAscii(words: string[], ascii: string, file: string, line: number): void {
  const want = asciiOf(words);
  if (ascii.length > want.length || want.slice(0, ascii.length) !== ascii) {
    throw new MemleakError('E_FORMAT', `the ASCII column ${JSON.stringify(ascii)} does not match the words (expected ${JSON.stringify(want)}): damaged line`, { file, line });
  }
  if (want.slice(ascii.length).trim() !== '') {
    throw new MemleakError('E_FORMAT', `the ASCII column ends after ${ascii.length} of ${want.length} characters: truncated line`, { file, line });
  }
}
