/**
 * Raw page dumps: `--raw FILE --base ADDR`, the bytes of contiguous slab pages starting at ADDR (what
 * `crash rd -r`, /dev/mem tools or a custom dumper write). Read in place with pread, never loaded whole.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import type { MemoryReader } from '../util/memory.js';
import { PAGE_OFFSET_MASK } from '../util/page.js';
import { preadFully, readFailure } from '../util/read-file.js';

export class RawFileMemory implements MemoryReader {
  readonly description: string;
  readonly size: number;
  private readonly fd: number;
  constructor(readonly file: string, readonly base: bigint) {
    try {
      this.fd = openSync(file, 'r');
    } catch (e) {
      throw new MemleakError('E_IO', `cannot open raw dump: ${readFailure(e)}`, { file });
    }
    this.size = fstatSync(this.fd).size;
    if (this.size === 0) throw new MemleakError('E_NO_DATA', 'raw dump is empty', { file });
    if (base & PAGE_OFFSET_MASK) throw new MemleakError('E_USAGE', `--base ${hex(base)} is not page aligned`, { file });
    this.description = `raw dump ${file} at ${hex(base)}`;
  }

  read(addr: bigint, len: number): Uint8Array | null {
    if (addr < this.base) return null;
    const off = Number(addr - this.base);
    if (off + len > this.size) return null;
    const out = new Uint8Array(len);
    preadFully(this.fd, out, off, this.file);
    return out;
  }

  readInto(addr: bigint, out: Uint8Array): boolean {
    if (addr < this.base) return false;
    const off = Number(addr - this.base);
    if (off + out.length > this.size) return false;
    preadFully(this.fd, out, off, this.file);
    return true;
  }

  /** Slab base addresses covered by the file. A trailing partial slab is reported by the caller. */
  slabs(slabSize: number): { slabs: bigint[]; trailingBytes: number } {
    const n = Math.floor(this.size / slabSize);
    const slabs: bigint[] = [];
    for (let i = 0; i < n; i++) slabs.push(this.base + BigInt(i * slabSize));
    return { slabs, trailingBytes: this.size - n * slabSize };
  }

  close(): void {
    closeSync(this.fd);
  }
}
