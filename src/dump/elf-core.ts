/**
 * ELF cores: QEMU `dump-guest-memory` (PT_LOAD with physical addresses only), kdump's /proc/vmcore
 * (virtual direct-map addresses and valid p_paddr), makedumpfile ELF output (p_filesz < p_memsz: the
 * rest of the segment was zero pages it left out), and /proc/kcore (virtual addresses; p_paddr valid
 * for RAM and text since v4.11, "proc/kcore: update physical address for kcore ram and text", else -1). Notes: VMCOREINFO (name "VMCOREINFO"), everything else ignored.
 */
import { MemleakError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import type { ReadPlanner } from '../util/memory.js';
import { MAX_VMCOREINFO, newStats, cString, type Dump, type PhysicalMemory, type VirtualSegments } from './dump.js';

const PT_LOAD = 1;
const PT_NOTE = 4;
const ET_CORE = 4;
const EM_X86_64 = 62;
const NO_PADDR = 0xffffffffffffffffn;
/**
 * The most a PT_NOTE segment can hold: a dump's notes are one NT_PRSTATUS (336 bytes of note) per CPU,
 * VMCOREINFO (at most a page) and, in /proc/kcore, prpsinfo and a task_struct; 8192 CPUs take 3 MiB.
 */
const MAX_NOTE_SEGMENT = 64 << 20;

interface Segment {
  vaddr: bigint;
  paddr: bigint;
  fileOff: number;
  fileSz: number;
  memSz: number;
}

export function isElf(src: ByteSource): boolean {
  if (src.size < 64) return false;
  const h = src.read(0, 4);
  return h[0] === 0x7f && h[1] === 0x45 && h[2] === 0x4c && h[3] === 0x46;
}

function fail(src: ByteSource, offset: number, msg: string): never {
  throw new MemleakError('E_FORMAT', msg, { file: src.path, offset });
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

export function parseNotes(bytes: Uint8Array, src: ByteSource, baseOffset: number): ElfNote[] {
  const notes: ElfNote[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  while (p + 12 <= bytes.length) {
    const namesz = dv.getUint32(p, true);
    const descsz = dv.getUint32(p + 4, true);
    const type = dv.getUint32(p + 8, true);
    if (namesz === 0 && descsz === 0 && type === 0) break; // zero padding at the end of the note segment
    const nameOff = p + 12;
    // Sizes are u32: rounded up to 4 in float arithmetic (a 32-bit `& ~3` turns 2^31 negative).
    const descOff = nameOff + Math.ceil(namesz / 4) * 4;
    const next = descOff + Math.ceil(descsz / 4) * 4;
    if (next > bytes.length + 3) fail(src, baseOffset + p, `ELF note of ${namesz}+${descsz} bytes runs past its PT_NOTE segment`);
    const name = cString(bytes.subarray(nameOff, nameOff + namesz));
    notes.push({ name, type, desc: bytes.subarray(descOff, Math.min(bytes.length, descOff + descsz)) });
    p = next;
  }
  return notes;
}

export function openElfCore(src: ByteSource, opts: { kcore: boolean }): Dump {
  const h = src.read(0, 64);
  const dv = new DataView(h.buffer);
  if (h[4] === 1) fail(src, 4, 'ELF class is 32-bit (ELFCLASS32): a 32-bit kernel\'s core; 32-bit kernels are not supported, only x86_64');
  if (h[4] !== 2) fail(src, 4, `ELF class ${h[4]} is not 64-bit: only x86_64 vmcores are supported`);
  if (h[5] !== 1) fail(src, 5, 'ELF data is not little-endian: only x86_64 vmcores are supported');
  const type = dv.getUint16(16, true);
  if (type !== ET_CORE) fail(src, 16, `ELF type ${type} is not ET_CORE (4): this is not a core dump`);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64) fail(src, 18, `ELF machine ${machine} is not x86_64 (62)`);
  const phoffBig = dv.getBigUint64(32, true);
  const phentsize = dv.getUint16(54, true);
  let phnum = dv.getUint16(56, true);
  if (phentsize !== 56) fail(src, 54, `ELF program header size ${phentsize} is not 56`);
  if (phnum === 0xffff) {
    // PN_XNUM: the real count is in section header 0's sh_info (large QEMU dumps).
    const shoff = dv.getBigUint64(40, true);
    if (shoff === 0n || shoff + 64n > BigInt(src.size)) fail(src, 40, `e_phnum is PN_XNUM but section header 0 (e_shoff ${shoff}) is not in the file (${src.size} bytes)`);
    const sh0 = new DataView(src.read(Number(shoff), 64).buffer);
    phnum = sh0.getUint32(44, true);
    if (phnum < 0xffff) fail(src, Number(shoff) + 44, `e_phnum is PN_XNUM but section 0's sh_info gives ${phnum} program headers (PN_XNUM is only for 65535 or more)`);
  }
  // Bounds before any allocation: phnum * 56 bytes from e_phoff must lie in the file.
  if (phoffBig + BigInt(phnum) * 56n > BigInt(src.size)) {
    fail(src, 32, `${phnum} program headers at e_phoff ${phoffBig} run past the end of the file (${src.size} bytes): truncated or damaged header`);
  }
  const phoff = Number(phoffBig);
  const ph = src.read(phoff, phnum * phentsize);
  const pdv = new DataView(ph.buffer);
  const loads: Segment[] = [];
  let vmcoreinfo: string | null = null;
  let extractInfo: Record<string, unknown> | null = null;
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    const ptype = pdv.getUint32(o, true);
    const fileOffBig = pdv.getBigUint64(o + 8, true);
    const vaddr = pdv.getBigUint64(o + 16, true);
    const paddr = pdv.getBigUint64(o + 24, true);
    const fileSzBig = pdv.getBigUint64(o + 32, true);
    const memSzBig = pdv.getBigUint64(o + 40, true);
    if (ptype === PT_NOTE || ptype === PT_LOAD) {
      // 2^53 bytes is far beyond any machine: such a field is damage, and Number() would round it.
      for (const [v, at, what] of [[fileOffBig, 8, 'p_offset'], [fileSzBig, 32, 'p_filesz'], [memSzBig, 40, 'p_memsz']] as const) {
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(src, phoff + o + at, `program header ${i} ${what} ${v} is impossible: damaged header`);
      }
      if (ptype === PT_LOAD && paddr !== NO_PADDR && paddr + memSzBig > 1n << 52n) {
        fail(src, phoff + o + 24, `PT_LOAD ${i} at physical ${paddr} (+${memSzBig}) lies beyond x86_64's 52-bit physical address space: damaged header`);
      }
    }
    const fileOff = Number(fileOffBig);
    const fileSz = Number(fileSzBig);
    const memSz = Number(memSzBig);
    if (ptype === PT_NOTE) {
      if (fileOff + fileSz > src.size) fail(src, phoff + o, `PT_NOTE at ${fileOff}+${fileSz} runs past the end of the file (${src.size}): truncated`);
      // Read whole, so its size is checked first: a damaged p_filesz in a dump of many GB is an allocation that size.
      if (fileSz > MAX_NOTE_SEGMENT) fail(src, phoff + o + 32, `PT_NOTE ${i} p_filesz ${fileSz} is more than the ${MAX_NOTE_SEGMENT >> 20} MiB any kernel's notes take: damaged header`);
      for (const n of parseNotes(src.read(fileOff, fileSz), src, fileOff)) {
        if (n.name === 'VMCOREINFO') {
          if (n.desc.length > MAX_VMCOREINFO) fail(src, fileOff, `VMCOREINFO note of ${n.desc.length} bytes: the kernel writes at most a page; damaged note`);
          vmcoreinfo = cString(n.desc);
        }
        if (n.name === 'SYSAK') {
          try {
            extractInfo = JSON.parse(new TextDecoder().decode(n.desc));
          } catch {
            fail(src, fileOff, 'SYSAK extract note is not JSON: corrupt extract');
          }
        }
      }
    } else if (ptype === PT_LOAD) {
      if (fileSz > memSz) fail(src, phoff + o, `PT_LOAD ${i} has p_filesz ${fileSz} > p_memsz ${memSz}`);
      // kcore's size is not its file size: segments are read on demand and checked there.
      if (!opts.kcore && fileOff + fileSz > src.size) {
        fail(src, phoff + o, `PT_LOAD ${i} (file offset ${fileOff}, ${fileSz} bytes) runs past the end of the file (${src.size}): truncated dump`);
      }
      loads.push({ vaddr, paddr, fileOff, fileSz, memSz });
    }
  }
  if (loads.length === 0) fail(src, phoff, 'ELF core has no PT_LOAD segments: no memory in it');

  const stats = newStats();
  // Physical view: every segment with a usable p_paddr. QEMU writes vaddr 0 (or vaddr == paddr).
  let withPaddr = loads.filter((s) => s.paddr !== NO_PADDR);
  if (opts.kcore) {
    // kcore lists RAM through the direct map (vaddr - paddr = page_offset_base) and the kernel text
    // again through its own mapping; only the direct-map view is used, so segments never overlap.
    const diff = new Map<bigint, number>();
    for (const s of withPaddr) diff.set(s.vaddr - s.paddr, (diff.get(s.vaddr - s.paddr) ?? 0) + s.memSz);
    const direct = [...diff.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    withPaddr = withPaddr.filter((s) => s.vaddr - s.paddr === direct);
  }
  // One pread straight into the caller's buffer where the source can (a plain file).
  const readInto = (out: Uint8Array, offset: number) => (src.readInto ? src.readInto(out, offset) : out.set(src.read(offset, out.length)));
  const physSegs = withPaddr.map((s) => ({ ...s, p: Number(s.paddr) })).sort((a, b) => a.p - b.p);
  /**
   * Physical [paddr, paddr + len) segment by segment: run(done, fileOff, inFile, n) for each piece of n
   * bytes whose first inFile are in the file at fileOff (the rest are zeros). False (counted as excluded)
   * when some byte is in no segment.
   */
  const segmentRuns = (paddr: number, len: number, run: (done: number, fileOff: number, inFile: number, n: number) => void): boolean => {
    let done = 0;
    while (done < len) {
      const a = paddr + done;
      const seg = findSeg(physSegs, a);
      if (!seg) {
        stats.excludedPages++;
        return false;
      }
      const off = a - seg.p;
      const n = Math.min(len - done, seg.memSz - off);
      run(done, seg.fileOff + off, Math.max(0, Math.min(n, seg.fileSz - off)), n);
      done += n;
    }
    return true;
  };
  const phys: PhysicalMemory | null = physSegs.length === 0 ? null : {
    physEnd: Math.max(...physSegs.map((s) => s.p + s.memSz)),
    readPhys(paddr: number, len: number): Uint8Array | null {
      const out = new Uint8Array(len);
      return this.readPhysInto!(paddr, out) ? out : null;
    },
    readPhysInto(paddr: number, dst: Uint8Array): boolean {
      return segmentRuns(paddr, dst.length, (done, fileOff, inFile, n) => {
        if (inFile > 0) readInto(dst.subarray(done, done + inFile), fileOff);
        // p_filesz < p_memsz: makedumpfile dropped zero pages from the end of the segment.
        if (inFile < n) dst.fill(0, done + inFile, done + n);
      });
    },
    planPhys(paddr: number, len: number, plan: ReadPlanner, dst: number): boolean | null {
      if (src.fd === undefined || !src.pieces || !plan.useFile(src.fd, src.path)) return null;
      return segmentRuns(paddr, len, (done, fileOff, inFile, n) => {
        const at = dst + done;
        if (inFile > 0) src.pieces!(fileOff, inFile, (p, filePos, m) => plan.read(at + p, filePos, m));
        if (inFile < n) plan.read(at + inFile, -1, n - inFile);
      });
    },
  };
  let virt: VirtualSegments | null = null;
  if (opts.kcore) {
    const vsegs = loads.map((s) => ({ ...s, v: s.vaddr })).sort((a, b) => (a.v < b.v ? -1 : 1));
    const findV = (v: bigint) => vsegs.find((s) => v >= s.v && v < s.v + BigInt(s.memSz));
    virt = {
      covers: (v) => findV(v) !== undefined,
      readVirt(v: bigint, len: number): Uint8Array | null {
        const seg = findV(v);
        if (!seg) return null;
        const off = Number(v - seg.v);
        if (off + len > seg.memSz) return null;
        try {
          return src.read(seg.fileOff + off, len);
        } catch {
          return null; // an unmapped hole inside a kcore segment reads as an I/O error
        }
      },
    };
  }
  const qemu = loads.every((s) => s.vaddr === 0n || s.vaddr === s.paddr);
  return {
    path: src.path,
    format: opts.kcore ? '/proc/kcore'
      : extractInfo ? `sysak extract (ELF core, ${loads.length} segments, cache ${String(extractInfo.cache)}, cut from ${String(extractInfo.from)})`
      : qemu ? 'ELF core (physical PT_LOADs)' : 'ELF core (kdump /proc/vmcore layout)',
    live: opts.kcore,
    vmcoreinfo,
    phys,
    virt,
    stats,
    headerPhysBase: null,
    extractInfo,
    close: () => src.close(),
  };
}

function findSeg<T extends { p: number; memSz: number }>(segs: T[], a: number): T | null {
  let lo = 0;
  let hi = segs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segs[mid];
    if (a < s.p) hi = mid - 1;
    else if (a >= s.p + s.memSz) lo = mid + 1;
    else return s;
  }
  return null;
}
