/**
 * A kallsyms file is checked against the dump's own tables by looking up a few names
 * (dump-symbols.ts dumpAddressesForCheck, kallsyms-tables.ts lookupInKallsymsTables) instead of
 * building the whole table: it must answer what the whole table answers, for every name, repeated
 * static names included, and leave damaged tables to the full decode.
 */
import { describe, expect, it } from 'vitest';
import { openDump } from '../src/dump/open-dump.js';
import { Program } from '../src/kernel/program.js';
import { dumpAddressesForCheck, dumpKernelSymbols, vmcoreinfoTables } from '../src/kernel/dump-symbols.js';
import { decodeKallsymsTables, lookupInKallsymsTables } from '../src/kernel/kallsyms-tables.js';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { sample } from './helpers.js';

describe('kallsyms lookup of a few names in the dump\'s tables', () => {
  for (const s of ['demo-kmalloc64', 'k6.12-demo-kmalloc64']) {
    it(`${s}: the same addresses as the whole table, repeated names included`, () => {
      const dump = openDump(sample(`${s}/vmcore.extract.gz`));
      try {
        const prog = new Program(dump);
        const whole = Kallsyms.fromRows(dumpKernelSymbols(prog).rows!, '');
        const seen = new Map<string, number>();
        for (const { name } of whole.symbolsOf(null)) seen.set(name, (seen.get(name) ?? 0) + 1);
        const repeated = [...seen].filter(([, n]) => n > 1).map(([name]) => name).slice(0, 300);
        const some = [...seen.keys()].filter((_, i) => i % 997 === 0);
        expect(repeated.length).toBeGreaterThan(50);
        const names = [...repeated, ...some, 'slab_caches', 'modules', '__per_cpu_offset', 'no_such_symbol', 'slab_cache', 'odules', ''];
        const got = lookupInKallsymsTables(prog, vmcoreinfoTables(prog), names)!;
        expect(got).not.toBeNull();
        for (const n of names) expect(got.get(n) ?? null, n).toBe(whole.addressOf(n));
        expect(dumpAddressesForCheck(prog)!.get('slab_caches')).toBe(whole.addressOf('slab_caches'));
      } finally {
        dump.close();
      }
    });
  }

  it('leaves tables that decode to garbage to the full decode (which refuses them)', () => {
    const dump = openDump(sample('demo-kmalloc64/vmcore.extract.gz'));
    try {
      const prog = new Program(dump);
      const t = vmcoreinfoTables(prog);
      // The token table read one byte late: every token loses its first character.
      const shifted = { ...t, tokenTable: t.tokenTable + 1n };
      expect(() => decodeKallsymsTables(prog, shifted, 'shifted')).toThrow(/decode to garbage/);
      expect(lookupInKallsymsTables(prog, shifted, ['slab_caches'])).toBeNull();
    } finally {
      dump.close();
    }
  });
});
