/**
 * BTF (Documentation/bpf/btf.rst): the kernel's own type information, from a file,
 * /sys/kernel/btf/vmlinux, or the dump's .BTF section (__start_BTF .. __stop_BTF). Only what the
 * analysis asks is decoded: struct members (through anonymous unions/structs) and type sizes.
 */
import { MemleakError } from '../errors.js';

const BTF_MAGIC = 0xeb9f;
const KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

/** Bytes that follow a type record of this kind (members, enumerators, array info), or null for an unknown kind. */
export function trailingBytes(kind: number, vlen: number): number | null {
  switch (kind) {
    case KIND.INT: case KIND.VAR: case KIND.DECL_TAG: return 4;
    case KIND.ARRAY: return 12;
    case KIND.STRUCT: case KIND.UNION: case KIND.DATASEC: case KIND.ENUM64: return vlen * 12;
    case KIND.ENUM: case KIND.FUNC_PROTO: return vlen * 8;
    case KIND.PTR: case KIND.FWD: case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT:
    case KIND.FUNC: case KIND.FLOAT: case KIND.TYPE_TAG: return 0;
    default: return null;
  }
}

/** FNV-1a of the NUL-terminated bytes at `at` (the string section's names, without decoding them). */
function hashString(b: Uint8Array, at: number): number {
  let h = 0x811c9dc5;
  for (let i = at; i < b.length && b[i] !== 0; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/** Types nest (arrays of structs of anonymous unions) but never this deep; a cycle is damage. */
const MAX_DEPTH = 64;

interface BtfType {
  kind: number;
  vlen: number;
  kflag: boolean;
  /** size for INT/STRUCT/UNION/ENUM/FLOAT/DATASEC, referenced type otherwise. */
  sizeOrType: number;
  /** Offset of the type's trailing data (members, array info) in the type section. */
  extra: number;
}

export interface BtfMember {
  name: string;
  typeId: number;
  /** Bits from the start of the outermost struct. */
  bitOffset: number;
  /** Non-zero for bitfields. */
  bitSize: number;
}

/**
 * Opening walks the type section once to check it and to note where each type starts; names are
 * decoded only for what is asked (a vmlinux BTF has ~100k types and ~60k enumerators, and decoding
 * all their names was most of the `types` phase).
 */
export class Btf {
  /** Offset of type id's record in the type section (id 0 is void). */
  private readonly typeOff: Uint32Array;
  private readonly count: number;
  /** Named struct, union and typedef ids by a hash of their name's bytes, in id order. */
  private readonly byNameHash = new Map<number, number[]>();
  /** ENUM type ids, in id order: their enumerators are looked up by name. */
  private readonly enums: number[] = [];
  private readonly byName = new Map<string, number[]>();
  private readonly enumerators = new Map<string, number | null>();
  private readonly tv: DataView;
  private readonly strs: Buffer;
  private readonly str: (off: number) => string;

  private constructor(readonly source: string, bytes: Uint8Array) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 24 || dv.getUint16(0, true) !== BTF_MAGIC) {
      throw new MemleakError('E_FORMAT', 'not BTF: the 0xeb9f magic is missing', { file: source, offset: 0 });
    }
    const hdrLen = dv.getUint32(4, true);
    if (hdrLen < 24 || hdrLen > 4096) throw new MemleakError('E_FORMAT', `BTF header length ${hdrLen} is impossible (24 in every kernel)`, { file: source, offset: 4 });
    const typeOff = dv.getUint32(8, true);
    const typeLen = dv.getUint32(12, true);
    const strOff = dv.getUint32(16, true);
    const strLen = dv.getUint32(20, true);
    if (hdrLen + typeOff + typeLen > bytes.length || hdrLen + strOff + strLen > bytes.length) {
      throw new MemleakError('E_FORMAT', `BTF sections (types ${typeLen} B, strings ${strLen} B) run past the ${bytes.length} bytes given: truncated`, {
        file: source,
        offset: 8,
      });
    }
    const strs = Buffer.from(bytes.buffer, bytes.byteOffset + hdrLen + strOff, strLen);
    this.strs = strs;
    const dec = new TextDecoder();
    this.str = (off: number) => {
      const end = strs.indexOf(0, off);
      return dec.decode(strs.subarray(off, end < 0 ? strs.length : end));
    };
    this.tv = new DataView(bytes.buffer, bytes.byteOffset + hdrLen + typeOff, typeLen);
    const tv = this.tv;
    // A type record is at least 12 bytes.
    const offs = new Uint32Array(1 + Math.floor(typeLen / 12));
    let id = 1;
    let p = 0;
    while (p < typeLen) {
      if (p + 12 > typeLen) throw new MemleakError('E_FORMAT', 'BTF type section ends inside a type', { file: source, offset: hdrLen + typeOff + p });
      const nameOff = tv.getUint32(p, true);
      const info = tv.getUint32(p + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const extra = p + 12;
      const extraLen = trailingBytes(kind, vlen);
      if (extraLen === null) {
        throw new MemleakError('E_FORMAT', `unknown BTF kind ${kind} (type ${id})`, { file: source, offset: hdrLen + typeOff + p });
      }
      if (extra + extraLen > typeLen) {
        throw new MemleakError('E_FORMAT', `BTF type ${id} (kind ${kind}, vlen ${vlen}) runs past the type section (${typeLen} bytes): truncated or damaged`, {
          file: source,
          offset: hdrLen + typeOff + p,
        });
      }
      offs[id] = p;
      if (kind === KIND.ENUM && vlen > 0) this.enums.push(id);
      if (nameOff && (kind === KIND.STRUCT || kind === KIND.UNION || kind === KIND.TYPEDEF)) {
        const h = hashString(strs, nameOff);
        const l = this.byNameHash.get(h);
        if (l) l.push(id);
        else this.byNameHash.set(h, [id]);
      }
      id++;
      p = extra + extraLen;
    }
    this.count = id - 1;
    this.typeOff = offs.subarray(0, id);
  }

  private type(id: number): BtfType | null {
    if (!(id >= 1 && id <= this.count)) return null;
    const p = this.typeOff[id];
    const info = this.tv.getUint32(p + 4, true);
    return { kind: (info >>> 24) & 0x1f, vlen: info & 0xffff, kflag: info >>> 31 === 1, sizeOrType: this.tv.getUint32(p + 8, true), extra: p + 12 };
  }

  /** Every string-section offset whose string is exactly `name` (a name may be stored more than once, or be the tail of a longer string). */
  private offsetsOf(name: string): number[] {
    const needle = Buffer.from(name + '\0', 'utf8');
    const out: number[] = [];
    for (let at = this.strs.indexOf(needle); at >= 0; at = this.strs.indexOf(needle, at + 1)) out.push(at);
    return out;
  }

  /** Named struct/union/typedef ids with this name, in id order. */
  private idsNamed(name: string): number[] {
    let ids = this.byName.get(name);
    if (ids === undefined) {
      const bytes = Buffer.from(name + '\0', 'utf8');
      ids = name === '' ? [] : (this.byNameHash.get(hashString(bytes, 0)) ?? []).filter((id) => this.str(this.tv.getUint32(this.typeOff[id], true)) === name);
      this.byName.set(name, ids);
    }
    return ids;
  }

  private memberNames(t: BtfType): { name: string; typeId: number; offset: number; bitSize: number }[] {
    const tv = this.tv;
    const out: { name: string; typeId: number; offset: number; bitSize: number }[] = [];
    for (let i = 0; i < t.vlen; i++) {
      const o = t.extra + i * 12;
      const n = tv.getUint32(o, true);
      const off = tv.getUint32(o + 8, true);
      out.push({
        name: n ? this.str(n) : '',
        typeId: tv.getUint32(o + 4, true),
        offset: t.kflag ? off & 0xffffff : off,
        bitSize: t.kflag ? off >>> 24 : 0,
      });
    }
    return out;
  }

  static parse(bytes: Uint8Array, source: string): Btf {
    return new Btf(source, bytes);
  }

  get typeCount(): number {
    return this.count;
  }

  /** A struct (or union) by name; the complete definition wins over forward declarations. */
  structId(name: string): number | null {
    for (const id of this.idsNamed(name)) {
      const t = this.type(id)!;
      if ((t.kind === KIND.STRUCT || t.kind === KIND.UNION) && (t.vlen > 0 || t.sizeOrType > 0)) return id;
    }
    return null;
  }

  /** Skips typedef/const/volatile/restrict/type_tag. */
  private resolve(id: number): number {
    for (let guard = 0; guard < 64; guard++) {
      const t = this.type(id);
      if (!t) return id;
      if (t.kind === KIND.TYPEDEF || t.kind === KIND.VOLATILE || t.kind === KIND.CONST || t.kind === KIND.RESTRICT || t.kind === KIND.TYPE_TAG) {
        id = t.sizeOrType;
      } else return id;
    }
    return id;
  }

  sizeOfId(id: number, depth = 0): number {
    if (depth > MAX_DEPTH) return 0;
    id = this.resolve(id);
    const t = this.type(id);
    if (!t) return 0;
    switch (t.kind) {
      case KIND.PTR: return 8;
      case KIND.ARRAY: {
        const elem = this.tv.getUint32(t.extra, true);
        const n = this.tv.getUint32(t.extra + 8, true);
        return this.sizeOfId(elem, depth + 1) * n;
      }
      case KIND.INT: case KIND.STRUCT: case KIND.UNION: case KIND.ENUM: case KIND.ENUM64: case KIND.FLOAT: return t.sizeOrType;
      default: return 0;
    }
  }

  sizeOf(structName: string): number | null {
    const id = this.structId(structName);
    return id === null ? null : this.type(id)!.sizeOrType;
  }

  /**
   * A member by name, looking through anonymous unions/structs as C does; `a.b` descends into a
   * named member's struct.
   */
  member(structName: string, path: string): BtfMember | null {
    const id = this.structId(structName);
    if (id === null) return null;
    let cur: BtfMember | null = null;
    let typeId = id;
    let base = 0;
    for (const part of path.split('.')) {
      const found = this.findMember(this.resolve(typeId), part, base);
      if (!found) return null;
      cur = found;
      typeId = found.typeId;
      base = found.bitOffset;
    }
    return cur;
  }

  private findMember(id: number, name: string, base: number, depth = 0): BtfMember | null {
    const t = this.type(id);
    if (depth > MAX_DEPTH) return null;
    if (!t || (t.kind !== KIND.STRUCT && t.kind !== KIND.UNION)) return null;
    const members = this.memberNames(t);
    for (const m of members) if (m.name === name) return { name, typeId: m.typeId, bitOffset: base + m.offset, bitSize: m.bitSize };
    for (const m of members) {
      if (m.name !== '') continue;
      const inner = this.findMember(this.resolve(m.typeId), name, base + m.offset, depth + 1);
      if (inner) return inner;
    }
    return null;
  }

  /** The value of a C enumerator (PG_reserved, PGTY_buddy ...), or null. */
  enumerator(name: string): number | null {
    let v = this.enumerators.get(name);
    if (v === undefined) {
      // The last enumerator of that name in type order wins (C enumerator names are unique in a build).
      v = null;
      const offs = new Set(this.offsetsOf(name));
      if (offs.size) {
        for (const id of this.enums) {
          const t = this.type(id)!;
          for (let i = 0; i < t.vlen; i++) if (offs.has(this.tv.getUint32(t.extra + i * 8, true))) v = this.tv.getInt32(t.extra + i * 8 + 4, true);
        }
      }
      this.enumerators.set(name, v);
    }
    return v;
  }

  /** Element count of an array member's type, or null if it is not an array. */
  arrayLength(typeId: number): number | null {
    const t = this.type(this.resolve(typeId));
    if (!t || t.kind !== KIND.ARRAY) return null;
    return this.tv.getUint32(t.extra + 8, true);
  }
}
