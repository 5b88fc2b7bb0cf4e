/**
 * Property tests over every reader (issue 11): mutated real inputs give a result or a MemleakError
 * that names the file, within a time bound, never another exception. A fixed seed and a small budget
 * here; `npm run fuzz` runs the same targets for minutes with a new seed each time.
 */
import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { TARGETS, verdictOf } from './fuzz/targets.js';
import { describeEdits, editsArb, mutateWithLog } from './fuzz/mutate.js';
import { BufferSource } from '../src/dump/byte-source.js';
import { openDumpSource } from '../src/dump/open-dump.js';
import { writeElfCore } from '../src/dump/elf-writer.js';

const SEED = Number(process.env.SYSAK_FUZZ_SEED ?? 11);
const RUNS = Number(process.env.SYSAK_FUZZ_RUNS ?? 40);
/**
 * A hang detector, not a speed goal (speed is the bench's job): CPU time of this process per input,
 * so a loaded machine cannot fail it (2 s of wall time did, at load 20) while a quadratic or
 * endless reader still does. The campaign (`npm run fuzz`) holds every input to the same 5 s of CPU.
 */
const BOUND_MS = 5000;
/** The whole analysis of a 30 MB extract. */
const HEAVY_BOUND_MS = 10000;
const cpuMs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};

describe('fuzz: mutated real inputs are read or refused with the file named', () => {
  for (const t of TARGETS) {
    const seeds: { bytes: Uint8Array | null } = { bytes: null };
    test.prop([editsArb(t.kind, t.hotBytes)], { seed: SEED, numRuns: t.heavy ? Math.ceil(RUNS / 4) : RUNS })(t.name, async (edits) => {
      seeds.bytes ??= await t.seed();
      const { bytes, applied } = mutateWithLog(seeds.bytes, t.kind, edits);
      const start = process.cpuUsage();
      const v = await verdictOf(t, bytes);
      const ms = cpuMs(start);
      expect(v.ok ? 'ok' : `${v.why}\nedits: ${describeEdits(applied)}`).toBe('ok');
      expect(ms, describeEdits(applied)).toBeLessThan(t.heavy ? HEAVY_BOUND_MS : BOUND_MS);
    }, 120_000);
  }
});

describe('extract writer/reader round trip', () => {
  const page = fc.record({ pfn: fc.nat(1 << 20), fill: fc.nat(255), word: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) });
  test.prop([fc.uniqueArray(page, { minLength: 1, maxLength: 24, selector: (p) => p.pfn }), fc.string({ maxLength: 200 })], { seed: SEED, numRuns: RUNS })(
    'every page written is read back at its physical address, the rest is absent',
    (ps, info) => {
      const pages = ps.map((p) => {
        const data = new Uint8Array(4096).fill(p.fill);
        new DataView(data.buffer).setBigUint64(8, p.word, true);
        return { pfn: p.pfn, data };
      });
      const vmcoreinfo = `OSRELEASE=${info.replace(/[\0\n]/g, '')}\nPAGESIZE=4096\n`;
      const d = openDumpSource(new BufferSource('x.core', writeElfCore(pages, 4096, vmcoreinfo, { cache: 'c', from: 'f' })));
      expect(d.vmcoreinfo).toBe(vmcoreinfo);
      for (const p of pages) expect(d.phys!.readPhys(p.pfn * 4096, 4096)).toEqual(p.data);
      const missing = [...Array(8).keys()].map((i) => (ps[0].pfn + 1 + i * 7919) % (1 << 20)).filter((pfn) => !ps.some((p) => p.pfn === pfn));
      for (const pfn of missing) expect(d.phys!.readPhys(pfn * 4096, 4096)).toBeNull();
    },
  );
});
