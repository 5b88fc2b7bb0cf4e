import { describe, expect, it } from 'vitest';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { MemleakError } from '../src/errors.js';
import { sampleText } from './helpers.js';

describe('kallsyms', () => {
  const ks = Kallsyms.parse(sampleText('demo-kmalloc64/guest/kallsyms.txt.gz'), 'kallsyms.txt');

  it('resolves module functions to the %pS form the kernel prints in traces', () => {
    const a = ks.addressOf('demo_conn_add');
    expect(a).toBe(0xffffffffc0612c70n); // manifest.json module.functions.demo_conn_add
    expect(Kallsyms.format(ks.lookup(a! + 0x24n)!)).toBe('demo_conn_add+0x24/0x140 [memdemo]');
  });

  it('names module rodata objects', () => {
    const s = ks.lookup(0xffffffffc0614b60n)!;
    expect(Kallsyms.formatShort(s)).toBe('demo_conn_ops [memdemo]');
    expect(s.kind).toBe('rodata');
  });

  it('resolves trace call-site expressions back to addresses', () => {
    expect(ks.resolveExpression('demo_conn_add+0x24/0x140 [memdemo]')).toBe(0xffffffffc0612c94n);
  });

  it('sorts unsorted module blocks and bounds sizes by the next symbol of the same module', () => {
    const t = [
      'ffffffffc0002000 t second\t[modb]',
      'ffffffffc0001000 t first\t[moda]',
      'ffffffffc0001040 t __pfx_next\t[moda]',
      'ffffffffc0001050 t next\t[moda]',
      'ffffffff81000000 T _stext',
    ].join('\n') + '\n';
    const k = Kallsyms.parse(t, 'x');
    expect(Kallsyms.format(k.lookup(0xffffffffc0001010n)!)).toBe('first+0x10/0x40 [moda]');
    expect(k.lookup(0xffffffffc0001050n)!.name).toBe('next');
  });

  it('refuses a restricted (all-zero) file with the reason', () => {
    const t = '0000000000000000 T _stext\n0000000000000000 t foo\t[m]\n';
    expect(() => Kallsyms.parse(t, 'r.txt')).toThrowError(/kptr_restrict/);
  });

  it('refuses an empty file and names malformed lines', () => {
    expect(() => Kallsyms.parse('', 'e.txt')).toThrowError(/empty/);
    try {
      Kallsyms.parse('ffffffff81000000 T _stext\nnot a symbol line\n', 'bad.txt');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MemleakError);
      expect((e as MemleakError).where()).toMatch(/^bad\.txt:2: /);
    }
  });
});
