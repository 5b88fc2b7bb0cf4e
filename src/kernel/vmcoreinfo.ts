/**
 * VMCOREINFO (kernel/crash_core.c): `KEY=VALUE` lines the kernel writes for dump tools. SYMBOL and
 * KERNELOFFSET are hex, OFFSET/SIZE/NUMBER/LENGTH decimal (NUMBER may be negative: phys_base).
 */
import { MemleakError } from '../errors.js';
import { PAGE_SIZE } from '../util/page.js';

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

/** No kernel struct described in VMCOREINFO is anywhere near 16 MiB. */
const MAX_STRUCT = 1 << 24;

export function parseVmcoreinfo(text: string, file: string): VmcoreInfo {
  const info: VmcoreInfo = {
    osrelease: null,
    buildId: null,
    pageSize: PAGE_SIZE,
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
    const at = { file, line: i + 1 };
    const bad = (why: string) => new MemleakError('E_FORMAT', `VMCOREINFO ${JSON.stringify(line.slice(0, 60))}: ${why}`, at);
    const eq = line.indexOf('=');
    if (eq < 0) throw new MemleakError('E_FORMAT', `VMCOREINFO line without '=': ${JSON.stringify(line.slice(0, 60))}`, at);
    const key = line.slice(0, eq);
    const val = line.slice(eq + 1);
    // Every number is checked here, where it is read: later arithmetic (typed-array lengths, DataView
    // offsets, loop bounds) trusts these.
    const hex = (): bigint => {
      if (!/^[0-9a-fA-F]{1,16}$/.test(val)) throw bad('not a hex address of at most 16 digits');
      return BigInt('0x' + val);
    };
    const dec = (max: number, min = 0): number => {
      if (!/^\d{1,10}$/.test(val)) throw bad('not a decimal number');
      const n = Number(val);
      if (n < min || n > max) throw bad(`${n} is outside ${min}..${max}`);
      return n;
    };
    const m = /^(SYMBOL|OFFSET|SIZE|NUMBER|LENGTH)\((.+)\)$/.exec(key);
    if (m) {
      const [, kind, name] = m;
      if (kind === 'SYMBOL') info.symbols.set(name, hex());
      else if (kind === 'OFFSET') info.offsets.set(name, dec(MAX_STRUCT));
      else if (kind === 'SIZE') {
        const n = dec(MAX_STRUCT, 1);
        // struct page: 64 bytes on x86_64, up to 80-96 with debug fields; always whole words.
        if (name === 'page' && (n < 32 || n > 256 || n % 8 !== 0)) throw bad('sizeof(struct page) must be 32..256 and a multiple of 8');
        info.sizes.set(name, n);
      } else if (kind === 'LENGTH') info.lengths.set(name, dec(2 ** 32));
      else {
        // Decimal (%ld), or 0x-hex where the kernel prints it so (6.12: NUMBER(VMALLOC_START)=0xffffd27e40000000).
        if (!/^(-?\d{1,20}|0x[0-9a-fA-F]{1,16})$/.test(val)) throw bad('not a decimal or 0x-hex number');
        const n = BigInt(val);
        if (n < -(1n << 63n) || n >= 1n << 64n) throw bad('does not fit in 64 bits');
        // Page flag numbers are bits of page->flags; PG_locked is bit 0 in every kernel, so no other
        // flag can be 0.
        if (name.startsWith('PG_') && !name.endsWith('_mask') && (n < 0n || n > 63n || (n === 0n && name !== 'PG_locked'))) {
          throw bad(`${name} must be a bit number 1..63 of page->flags (0 is PG_locked): corrupt VMCOREINFO`);
        }
        info.numbers.set(name, n);
      }
    } else if (key === 'OSRELEASE') info.osrelease = val;
    else if (key === 'BUILD-ID') info.buildId = val;
    else if (key === 'PAGESIZE') {
      const n = dec(1 << 16);
      if (n < 4096 || (n & (n - 1)) !== 0) throw bad('PAGESIZE must be a power of two from 4096 to 65536');
      info.pageSize = n;
    } else if (key === 'KERNELOFFSET') info.kernelOffset = hex();
  }
  return info;
}
