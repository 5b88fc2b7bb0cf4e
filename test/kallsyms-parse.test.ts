/**
 * /proc/kallsyms is read without a regex, a split or a bigint per line (kernel/kallsyms.ts parse): it
 * must read exactly what the line-by-line form it replaced read (kept here as the specification), on
 * real files and on damaged lines, errors included.
 */
import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { Kallsyms, type KallsymsRow } from '../src/kernel/kallsyms.js';
import { MemleakError } from '../src/errors.js';
import { sampleText } from './helpers.js';

function reference(text: string, source: string): Kallsyms {
  const rows: KallsymsRow[] = [];
  let nonZero = 0;
  let lineNo = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const sp1 = line.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
    if (sp1 !== 16 || sp2 !== 18) throw new MemleakError('E_FORMAT', `not a /proc/kallsyms line: ${JSON.stringify(line.slice(0, 80))}`, { file: source, line: lineNo });
    const addrText = line.slice(0, 16);
    if (!/^[0-9a-f]{16}$/i.test(addrText)) throw new MemleakError('E_FORMAT', `bad address in kallsyms: ${JSON.stringify(addrText)}`, { file: source, line: lineNo });
    const a = BigInt('0x' + addrText);
    const t = line[17];
    const rest = line.slice(19);
    const tab = rest.indexOf('\t');
    let n = rest;
    let m: string | null = null;
    if (tab >= 0) {
      n = rest.slice(0, tab);
      const mod = rest.slice(tab + 1).trim();
      if (mod.startsWith('[') && mod.endsWith(']')) m = mod.slice(1, -1);
    }
    if (a !== 0n) nonZero++;
    if (t === 'A' || t === 'a') continue;
    rows.push({ a, t, n, m });
  }
  if (text.length > 0 && !text.endsWith('\n')) {
    throw new MemleakError('E_FORMAT', `the file ends inside line ${lineNo} (no newline at its end): truncated; copy /proc/kallsyms again`, { file: source, line: lineNo });
  }
  if (rows.length === 0 && nonZero === 0 && lineNo === 0) throw new MemleakError('E_KALLSYMS', 'kallsyms file is empty', { file: source });
  if (nonZero === 0) {
    throw new MemleakError('E_KALLSYMS', 'every kallsyms address is zero: the file was read without privilege (kptr_restrict); read /proc/kallsyms as root or set kernel.kptr_restrict=0', { file: source });
  }
  return Kallsyms.fromRows(rows, source);
}

function outcome(f: () => Kallsyms, probes: bigint[], names: string[]): unknown {
  let k: Kallsyms;
  try {
    k = f();
  } catch (e) {
    const m = e as MemleakError;
    return { error: m.code, message: m.message, context: m.context };
  }
  const mods = k.moduleNames();
  return {
    size: k.size,
    kernel: [...k.symbolsOf(null)],
    modules: mods.map((m) => [m, [...k.symbolsOf(m)]]),
    lookups: probes.map((a) => k.lookup(a)),
    byName: names.map((n) => k.addressOf(n)),
  };
}

const same = (text: string, probes: bigint[] = [], names: string[] = []) =>
  expect(outcome(() => Kallsyms.parse(text, 'f'), probes, names)).toEqual(outcome(() => reference(text, 'f'), probes, names));

const line = fc.tuple(
  fc.constantFrom('ffffffff81000000', 'ffffffffc0a01000', '0000000000000000', 'FFFFFFFF81000010', 'ffffffff8100001g', 'ffffffff 1000000', 'ffff'),
  fc.constantFrom(' ', '  ', ''),
  fc.constantFrom('T', 't', 'A', 'a', 'D', ' ', 'b'),
  fc.constantFrom(' ', '', '\t'),
  fc.constantFrom('schedule', 'demo_conn_add', 'x y', '', 'dup'),
  fc.constantFrom('', '\t[memdemo]', '\t[memdemo] ', '\tmemdemo', '\t[a]\t[b]', '\r'),
).map((p) => p.join(''));

describe('kallsyms parse', () => {
  it('reads the samples\' kallsyms files as before', () => {
    for (const s of ['demo-kmalloc64', 'k5.10-demo-kmalloc64']) {
      const text = sampleText(`${s}/guest/kallsyms.txt.gz`);
      same(text, [0xffffffff81000000n, 0xffffffffc0000000n, 0xffffffffc0a01234n, 0n], ['schedule', 'demo_conn_add', '_stext', 'no_such']);
    }
  });

  // Most files end with their newline (else they are refused as cut, whatever their lines hold).
  test.prop([fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.boolean()], { numRuns: 2000 })('reads any mix of good and damaged lines as before', (lines, nl, cut) => {
    same(lines.join(nl) + (lines.length > 0 && !cut ? nl : ''), [0xffffffff81000000n, 0xffffffff81000012n, 0xffffffffc0a01000n], ['schedule', 'dup', 'demo_conn_add', 'x y']);
  });

  it('a file cut inside a line (the modules\' symbols lost) is truncated, at that line', () => {
    const text = sampleText('demo-kmalloc64/guest/kallsyms.txt.gz');
    const at = text.indexOf('demo_conn_add') + 6;
    const line = text.slice(0, at).split('\n').length;
    // Before: read, and the leaking module's symbols were silently missing from the report.
    expect(() => Kallsyms.parse(text.slice(0, at), 'kallsyms.txt')).toThrowError(`the file ends inside line ${line} (no newline at its end): truncated; copy /proc/kallsyms again`);
  });
});
