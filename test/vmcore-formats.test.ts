/**
 * The harness's other dump formats (vmcore.elf, and with EXTRA_DUMPS=1 the standard kdump form and
 * lzo/snappy/zstd pages) must give results identical to vmcore.kdump. Recordings are looked for in
 * ../shared/recordings/* and ../rec/* (where README says to record new ones); without any, the test
 * is skipped with the reason in its name.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/** Kernels before 6.0 export no kallsyms tables in VMCOREINFO: their dumps are read with the guest's
 *  /proc/kallsyms (the same file for every format, so the comparison is unchanged). */
function kallsymsFor(dir: string): string | null {
  const uname = join(dir, 'guest', 'uname.txt');
  const release = existsSync(uname) ? /\b(\d+)\.(\d+)\./.exec(readFileSync(uname, 'utf8')) : null;
  return release && Number(release[1]) < 6 ? join(dir, 'guest', 'kallsyms.txt') : null;
}

describe.skipIf(recs.length === 0)(
  recs.length ? `dump formats agree (${recs.map((r) => `${r.dir}: ${r.files.length} formats`).join('; ')})` : 'dump formats agree (skipped: no recording with vmcore.elf or EXTRA_DUMPS=1 files in ../shared/recordings or ../rec)',
  () => {
    for (const rec of recs) {
      it(`${rec.dir}: ${rec.files.join(', ')}`, async () => {
        const results = [];
        for (const f of rec.files) {
          const r = await analyze({ ...defaultRequest(), vmcore: join(rec.dir, f), kallsyms: kallsymsFor(rec.dir), trace: join(rec.dir, 'guest', 'trace.txt'), geometry: { cache: 'kmalloc-64' } });
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
