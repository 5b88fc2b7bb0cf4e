/** /proc/slabinfo (version 2.1): per cache active/total objects, stride (s->size), objects per slab, pages per slab. */
import { MemleakError } from '../errors.js';

export interface SlabinfoRow {
  name: string;
  activeObjs: number;
  numObjs: number;
  objectSize: number; // s->size: the stride between objects
  objsPerSlab: number;
  pagesPerSlab: number;
  activeSlabs: number;
  numSlabs: number;
}

export function looksLikeSlabinfo(text: string): boolean {
  return text.startsWith('slabinfo - version:');
}

export function parseSlabinfo(text: string, file: string): Map<string, SlabinfoRow> {
  const lines = text.split('\n');
  if (!lines[0].startsWith('slabinfo - version: 2.')) {
    throw new MemleakError('E_FORMAT', 'not /proc/slabinfo version 2.x', { file, line: 1 });
  }
  const rows = new Map<string, SlabinfoRow>();
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i].trim();
    if (l === '' || l.startsWith('#')) continue;
    const f = l.split(/\s+/);
    // name active num objsize objperslab pagesperslab : tunables l b s : slabdata active num shared
    if (f.length < 16 || f[6] !== ':' || f[11] !== ':') {
      throw new MemleakError('E_FORMAT', `malformed slabinfo line: ${JSON.stringify(l.slice(0, 60))}`, { file, line: i + 1 });
    }
    const n = (k: number) => {
      // Decimal digits that fit a double exactly: Number() would take 1e20, 0x40 or 99999999999999999999 (rounded).
      const v = /^\d{1,15}$/.test(f[k]) ? Number(f[k]) : NaN;
      if (!Number.isInteger(v)) throw new MemleakError('E_FORMAT', `slabinfo field ${k} is not a number: ${f[k].slice(0, 24)}`, { file, line: i + 1 });
      return v;
    };
    const row = {
      name: f[0],
      activeObjs: n(1),
      numObjs: n(2),
      objectSize: n(3),
      objsPerSlab: n(4),
      pagesPerSlab: n(5),
      activeSlabs: n(13),
      numSlabs: n(14),
    };
    // The geometry the scan takes from this line: what SLAB and SLUB can write (sizes aligned to the
    // word, slabs of 2^order pages holding at least one object).
    const { objectSize: size, objsPerSlab: per, pagesPerSlab: pages } = row;
    if (size < 8 || size % 8 !== 0 || per < 1 || pages < 1 || (pages & (pages - 1)) !== 0 || pages > 1024 || per * size > pages * 4096) {
      throw new MemleakError('E_FORMAT', `impossible slab geometry for ${f[0].slice(0, 40)}: objsize ${size}, objperslab ${per}, pagesperslab ${pages}: damaged line`, { file, line: i + 1 });
    }
    rows.set(f[0], row);
  }
  return rows;
}
