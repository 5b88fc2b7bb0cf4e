/**
 * VMCOREINFO (kernel/crash_core.c): `KEY=VALUE` lines the kernel writes for dump tools. SYMBOL and
 * KERNELOFFSET are hex, OFFSET/SIZE/NUMBER/LENGTH decimal (NUMBER may be negative: phys_base).
 */
import { MemleakError } from '../errors.js';

export interface VmcoreInfo {
  osrelease: string | null;
  buildId: string | null;
  pageSize: number;
  kernelOffset: bigint | null;
  symbols: Map<string, bigint>;
  offsets: Map<string, number>;
  sizes: Map<string, number>;
  numbers: Map<string, bigint>;
  lengths: Map<string, number>;
  raw: string;
}

export function parseVmcoreinfo(text: string, file: string): VmcoreInfo {
  const info: VmcoreInfo = {
    osrelease: null,
    buildId: null,
    pageSize: 4096,
    kernelOffset: null,
    symbols: new Map(),
    offsets: new Map(),
    sizes: new Map(),
    numbers: new Map(),
    lengths: new Map(),
    raw: text,
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new MemleakError('E_FORMAT', `VMCOREINFO line without '=': ${JSON.stringify(line.slice(0, 60))}`, { file, line: i + 1 });
    const key = line.slice(0, eq);
    const val = line.slice(eq + 1);
    const m = /^(SYMBOL|OFFSET|SIZE|NUMBER|LENGTH)\((.+)\)$/.exec(key);
    try {
      if (m) {
        const [, kind, name] = m;
        if (kind === 'SYMBOL') info.symbols.set(name, BigInt('0x' + val));
        else if (kind === 'OFFSET') info.offsets.set(name, Number(val));
        else if (kind === 'SIZE') info.sizes.set(name, Number(val));
        else if (kind === 'LENGTH') info.lengths.set(name, Number(val));
        else info.numbers.set(name, BigInt(val));
      } else if (key === 'OSRELEASE') info.osrelease = val;
      else if (key === 'BUILD-ID') info.buildId = val;
      else if (key === 'PAGESIZE') info.pageSize = Number(val);
      else if (key === 'KERNELOFFSET') info.kernelOffset = BigInt('0x' + val);
    } catch {
      throw new MemleakError('E_FORMAT', `VMCOREINFO value is not a number: ${JSON.stringify(line.slice(0, 60))}`, { file, line: i + 1 });
    }
  }
  return info;
}
