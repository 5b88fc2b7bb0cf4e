/**
 * /proc snapshots for the check: /proc/meminfo parsed here, /proc/slabinfo by input/slabinfo.ts (the
 * same table --slabinfo reads), /proc/vmallocinfo by vmallocinfo.ts (the parser the vmalloc analysis uses).
 */
import { MemleakError } from '../errors.js';
import { parseSlabinfo, type SlabinfoRow } from '../input/slabinfo.js';
import { vmallocBytes } from './vmallocinfo.js';

export interface Snapshot {
  meminfo: Map<string, number>; // bytes
  slabinfo: Map<string, SlabinfoRow> | null;
  vmallocBytes: number | null;
  at: number;
}

/** What the check computes from (check/leak.ts usage): each missing one would silently count as 0. */
const MEMINFO_NEEDED = ['MemTotal', 'MemFree', 'Active', 'Inactive', 'Slab', 'SUnreclaim'];

export function parseMeminfo(text: string, file: string): Map<string, number> {
  const out = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    // At most 15 digits: a double holds them exactly, and 2^50 kB is beyond any machine.
    const m = /^([A-Za-z0-9_()]+):\s+(\d{1,15})(\s+kB)?$/.exec(line.trim());
    if (!m) throw new MemleakError('E_FORMAT', `not a /proc/meminfo line: ${JSON.stringify(line.slice(0, 60))}`, { file, line: i + 1 });
    // Every field is in kB but the HugePages_ counts: a size without its unit is another tool's output.
    if (!m[3] && !m[1].startsWith('HugePages_')) {
      throw new MemleakError('E_FORMAT', `${m[1]} has no kB unit: /proc/meminfo gives every size in kB (another tool's output, or an edited copy?)`, { file, line: i + 1 });
    }
    out.set(m[1], Number(m[2]) * (m[3] ? 1024 : 1));
  });
  const missing = MEMINFO_NEEDED.filter((k) => !out.has(k));
  if (missing.length === MEMINFO_NEEDED.length) throw new MemleakError('E_FORMAT', 'no MemTotal: not /proc/meminfo', { file });
  if (missing.length) throw new MemleakError('E_FORMAT', `no ${missing.join(', ')} line: not a whole /proc/meminfo (cut, or from a kernel before 2.6.19)`, { file, line: text.split('\n').length });
  return out;
}

export function snapshotFromTexts(meminfo: string, slabinfo: string | null, vmallocinfo: string | null, files: { meminfo: string; slabinfo: string }): Snapshot {
  return {
    meminfo: parseMeminfo(meminfo, files.meminfo),
    slabinfo: slabinfo ? parseSlabinfo(slabinfo, files.slabinfo) : null,
    vmallocBytes: vmallocinfo === null ? null : vmallocBytes(vmallocinfo),
    at: Date.now(),
  };
}
