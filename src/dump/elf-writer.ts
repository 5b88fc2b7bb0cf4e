/**
 * Writes a small ELF core (ET_CORE, physical PT_LOADs as QEMU writes them, a VMCOREINFO note and a
 * SYSAK note that says what the extract holds). The same reader that opens vmcores opens it again.
 */
const PT_LOAD = 1;
const PT_NOTE = 4;

export interface ExtractPage {
  pfn: number;
  data: Uint8Array;
}

function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name + '\0');
  const nlen = (nameBytes.length + 3) & ~3;
  const dlen = (desc.length + 3) & ~3;
  const out = new Uint8Array(12 + nlen + dlen);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, nameBytes.length, true);
  dv.setUint32(4, desc.length, true);
  dv.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + nlen);
  return out;
}

export function writeElfCore(pages: ExtractPage[], pageSize: number, vmcoreinfo: string, sysakNote: object): Uint8Array {
  pages = [...pages].sort((a, b) => a.pfn - b.pfn);
  // Contiguous pfns become one PT_LOAD.
  const runs: { pfn: number; pages: Uint8Array[] }[] = [];
  for (const p of pages) {
    const last = runs[runs.length - 1];
    if (last && last.pfn + last.pages.length === p.pfn) last.pages.push(p.data);
    else runs.push({ pfn: p.pfn, pages: [p.data] });
  }
  const notes = [
    note('VMCOREINFO', 0, new TextEncoder().encode(vmcoreinfo)),
    note('SYSAK', 1, new TextEncoder().encode(JSON.stringify(sysakNote))),
  ];
  const notesLen = notes.reduce((n, x) => n + x.length, 0);
  const phnum = 1 + runs.length;
  const phoff = 64;
  const noteOff = phoff + phnum * 56;
  let dataOff = Math.ceil((noteOff + notesLen) / pageSize) * pageSize;
  const total = dataOff + pages.length * pageSize;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // ELF64, little-endian, version 1, SysV
  dv.setUint16(16, 4, true); // ET_CORE
  dv.setUint16(18, 62, true); // EM_X86_64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phnum, true);
  const ph = (i: number, type: number, off: number, paddr: bigint, size: number) => {
    const o = phoff + i * 56;
    dv.setUint32(o, type, true);
    dv.setUint32(o + 4, type === PT_LOAD ? 7 : 0, true);
    dv.setBigUint64(o + 8, BigInt(off), true);
    dv.setBigUint64(o + 16, 0n, true); // vaddr 0: physical only, as QEMU's paging-less dumps
    dv.setBigUint64(o + 24, paddr, true);
    dv.setBigUint64(o + 32, BigInt(size), true);
    dv.setBigUint64(o + 40, BigInt(size), true);
    dv.setBigUint64(o + 48, type === PT_LOAD ? BigInt(pageSize) : 4n, true);
  };
  ph(0, PT_NOTE, noteOff, 0n, notesLen);
  let p = noteOff;
  for (const n of notes) {
    out.set(n, p);
    p += n.length;
  }
  runs.forEach((r, i) => {
    ph(i + 1, PT_LOAD, dataOff, BigInt(r.pfn) * BigInt(pageSize), r.pages.length * pageSize);
    for (const pg of r.pages) {
      out.set(pg, dataOff);
      dataOff += pageSize;
    }
  });
  return out;
}
