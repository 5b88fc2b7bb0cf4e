/**
 * The harness's other dump formats (vmcore.elf, and with EXTRA_DUMPS=1 the standard kdump form and
 * lzo/snappy/zstd pages) must give results identical to vmcore.kdump. Recordings are looked for in
 * ../shared/recordings/* and ../rec/* (where README says to record new ones); without any, the test
 * is skipped with the reason in its name.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRequest } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { ROOT } from './helpers.js';

const FORMATS = ['vmcore.kdump', 'vmcore.elf', 'vmcore.kdump-std', 'vmcore.kdump-lzo', 'vmcore.kdump-snappy', 'vmcore.kdump-zstd'];

function recordingsWithFormats(): { dir: string; files: string[] }[] {
  const out: { dir: string; files: string[] }[] = [];
  for (const parent of [join(ROOT, '..', 'shared', 'recordings'), join(ROOT, '..', 'rec')]) {
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent)) {
      const dir = join(parent, name);
      const files = FORMATS.filter((f) => existsSync(join(dir, f)));
      if (files.length >= 2 && existsSync(join(dir, 'guest', 'trace.txt'))) out.push({ dir, files });
    }
  }
  return out;
}

const recs = recordingsWithFormats();

/** Kernels before 6.0 export no kallsyms tables in VMCOREINFO: their dumps are read with the tables
 *  found in the kernel image (no --kallsyms, as a user with only the vmcore runs it). */
function before6(dir: string): boolean {
  const uname = join(dir, 'guest', 'uname.txt');
  const release = existsSync(uname) ? /\b(\d+)\.(\d+)\./.exec(readFileSync(uname, 'utf8')) : null;
  return release !== null && Number(release[1]) < 6;
}

describe.skipIf(recs.length === 0)(
  recs.length ? `dump formats agree (${recs.map((r) => `${r.dir}: ${r.files.length} formats`).join('; ')})` : 'dump formats agree (skipped: no recording with vmcore.elf or EXTRA_DUMPS=1 files in ../shared/recordings or ../rec)',
  () => {
    for (const rec of recs) {
      it(`${rec.dir}: ${rec.files.join(', ')}`, async () => {
        const results = [];
        for (const f of rec.files) {
          const r = await analyze({ ...defaultRequest(), vmcore: join(rec.dir, f), trace: join(rec.dir, 'guest', 'trace.txt'), geometry: { cache: 'kmalloc-64' } });
          if (before6(rec.dir)) expect(r.source.kallsyms).toMatch(/\(kallsyms tables found in the kernel image at 0xffffffff[0-9a-f]{8} \+ \d+ module symbols\)$/);
          results.push({
            file: f,
            allocated: r.cache.allocated,
            clusters: r.clusters.map((c) => [c.count, c.object]),
            verdict: r.verdict,
            callSites: r.callSites.map((c) => [c.function, c.unfreed, c.marked]),
            excluded: r.source.dump?.excludedPages,
            corrupt: r.source.dump?.corruptPages,
          });
        }
        for (const r of results.slice(1)) expect({ ...r, file: results[0].file }).toEqual(results[0]);
      }, 120_000);
    }
  },
);

/**
 * --kallsyms still wins over the tables found in the image, and is still checked against the dump: on
 * a pre-6.0 recording (the demo where recorded), the guest's /proc/kallsyms gives the same analysis and says so, and the
 * same file with one symbol moved is refused with the symbol named.
 */
const olds = recs.filter((r) => before6(r.dir) && existsSync(join(r.dir, 'guest', 'kallsyms.txt')));
const old = olds.find((r) => r.dir.endsWith('-demo-kmalloc64')) ?? olds[0]; // the demo has a verdict to compare
describe.skipIf(!old)(`--kallsyms on a kernel before 6.0 (${old ? old.dir : 'skipped: no pre-6.0 recording with guest/kallsyms.txt in ../rec'})`, () => {
  it('wins over the image\'s tables with the same result, and a moved symbol is refused', async () => {
    const dir = old!.dir;
    const base = { ...defaultRequest(), vmcore: join(dir, old!.files[0]), trace: join(dir, 'guest', 'trace.txt'), geometry: { cache: 'kmalloc-64' } };
    const image = await analyze(base);
    const file = await analyze({ ...base, kallsyms: join(dir, 'guest', 'kallsyms.txt') });
    expect(file.source.kallsyms).toMatch(/kallsyms\.txt/);
    expect(file.source.kallsyms).not.toMatch(/found in the kernel image/);
    expect(file.verdict).toEqual(image.verdict);
    expect(file.callSites).toEqual(image.callSites);
    const text = readFileSync(join(dir, 'guest', 'kallsyms.txt'), 'latin1');
    // slab_caches is not in VMCOREINFO: only the dump's own tables can catch this file
    const moved = text.replace(/^([0-9a-f]{16}) ([A-Za-z]) slab_caches$/m, (_, a: string, t: string) => `${(BigInt('0x' + a) + 0x40n).toString(16)} ${t} slab_caches`);
    expect(moved).not.toBe(text);
    const tmp = mkdtempSync(join(tmpdir(), 'sysak-kallsyms-'));
    try {
      writeFileSync(join(tmp, 'kallsyms.txt'), moved);
      await expect(analyze({ ...base, kallsyms: join(tmp, 'kallsyms.txt') })).rejects.toMatchObject({ code: 'E_KALLSYMS', message: expect.stringMatching(/^wrong kallsyms for this dump: slab_caches is 0x[0-9a-f]+ in the file but 0x[0-9a-f]+ in the dump's kallsyms tables/) });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});
