/**
 * Struct layouts: BTF first (exact for this build), VMCOREINFO OFFSET()/SIZE() as the fallback for the
 * few members the kernel exports there. A member neither knows is an error that names the flag to fix it.
 */
import { MemleakError } from '../errors.js';
import type { Btf } from './btf.js';
import type { VmcoreInfo } from './vmcoreinfo.js';

export class KernelTypes {
  constructor(
    readonly btf: Btf | null,
    private readonly info: VmcoreInfo | null,
    private readonly dumpPath: string,
  ) {}

  hasStruct(name: string): boolean {
    return this.btf?.structId(name) != null || (this.info?.sizes.has(name) ?? false);
  }

  /** Offsets already asked (the SLUB walk asks the same few members once per cache and slab). */
  private readonly offsets = new Map<string, number | null>();

  tryOffsetOf(struct: string, member: string): number | null {
    const key = `${struct}.${member}`;
    let o = this.offsets.get(key);
    if (o === undefined) {
      const m = this.btf?.member(struct, member);
      o = m ? m.bitOffset >> 3 : (this.info?.offsets.get(key) ?? null);
      this.offsets.set(key, o);
    }
    return o;
  }

  offsetOf(struct: string, member: string): number {
    const o = this.tryOffsetOf(struct, member);
    if (o === null) throw this.missing(`struct ${struct} member ${member}`);
    return o;
  }

  /** Bit offset and width (0 = not a bitfield) of a member. */
  bitfield(struct: string, member: string): { bitOffset: number; bitSize: number } {
    const m = this.btf?.member(struct, member);
    if (!m) throw this.missing(`struct ${struct} member ${member}`);
    return { bitOffset: m.bitOffset, bitSize: m.bitSize };
  }

  /** Array length of a member (e.g. kmem_cache.node[MAX_NUMNODES]). */
  arrayLength(struct: string, member: string): number | null {
    const m = this.btf?.member(struct, member);
    return m ? this.btf!.arrayLength(m.typeId) : null;
  }

  sizeOf(struct: string): number {
    const s = this.btf?.sizeOf(struct) ?? this.info?.sizes.get(struct) ?? null;
    if (s === null) throw this.missing(`the size of struct ${struct}`);
    return s;
  }

  private missing(what: string): MemleakError {
    const how = this.btf
      ? `the BTF (${this.btf.source}) does not describe it`
      : 'there is no BTF: pass --btf FILE (a copy of the machine\'s /sys/kernel/btf/vmlinux) or a dump that contains .BTF';
    return new MemleakError('E_FORMAT', `cannot find ${what}: ${how}`, { file: this.dumpPath });
  }
}
