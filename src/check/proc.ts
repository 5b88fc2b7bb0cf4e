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

export function parseMeminfo(text: string, file: string): Map<string, number> {
  const out = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (!m) throw new MemleakError('E_FORMAT', `not a /proc/meminfo line: ${JSON.stringify(line.slice(0, 60))}`, { file, line: i + 1 });
    out.set(m[1], Number(m[2]) * (line.includes('kB') ? 1024 : 1));
  });
  if (!out.has('MemTotal')) throw new MemleakError('E_FORMAT', 'no MemTotal: not /proc/meminfo', { file });
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
