/**
 * Test-only builders: re-pack the pages of a real extract as a standard kdump-compressed file and as a
 * makedumpfile flattened stream, so the kdump readers are tested on real kernel memory in CI (the
 * full-size recordings are not in the repository).
 */
import { readFileSync } from 'node:fs';
import { deflateSync, gunzipSync } from 'node:zlib';

export interface Page {
  pfn: number;
  data: Uint8Array;
}

export function elfPages(gzPath: string): { pages: Page[]; vmcoreinfo: string } {
  const raw = gunzipSync(readFileSync(gzPath));
  const b = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const phoff = Number(dv.getBigUint64(32, true));
  const phnum = dv.getUint16(56, true);
  const pages: Page[] = [];
  let vmcoreinfo = '';
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56;
    const type = dv.getUint32(o, true);
    const off = Number(dv.getBigUint64(o + 8, true));
    const paddr = Number(dv.getBigUint64(o + 24, true));
    const size = Number(dv.getBigUint64(o + 32, true));
    if (type === 4) {
      const namesz = dv.getUint32(off, true);
      const descsz = dv.getUint32(off + 4, true);
      const desc = off + 12 + ((namesz + 3) & ~3);
      vmcoreinfo = new TextDecoder().decode(b.subarray(desc, desc + descsz));
    } else if (type === 1) {
      for (let p = 0; p < size; p += 4096) pages.push({ pfn: (paddr + p) / 4096, data: b.slice(off + p, off + p + 4096) });
    }
  }
  return { pages, vmcoreinfo };
}

export interface KdumpLayout {
  bytes: Uint8Array;
  bitmapOff: number;
  bitmapLen: number;
  descOff: number;
}

/** A standard ("KDUMP   ", header_version 6) dump with zlib pages. */
export function buildKdump(pages: Page[], vmcoreinfo: string): KdumpLayout {
  const BS = 4096;
  pages = [...pages].sort((a, b) => a.pfn - b.pfn);
  const maxMapnr = pages[pages.length - 1].pfn + 1;
  const info = new TextEncoder().encode(vmcoreinfo);
  const subHdrSize = 1 + Math.ceil(info.length / BS);
  const bitmapLen = Math.ceil(Math.ceil(maxMapnr / 8) / BS) * BS;
  const bitmapOff = BS * (1 + subHdrSize);
  const descOff = bitmapOff + 2 * bitmapLen;
  let dataOff = descOff + pages.length * 24;
  const chunks: Uint8Array[] = [];
  const descs = new DataView(new ArrayBuffer(pages.length * 24));
  pages.forEach((p, i) => {
    const z = deflateSync(p.data);
    const useZ = z.length < BS;
    const data = useZ ? new Uint8Array(z) : p.data;
    descs.setBigInt64(i * 24, BigInt(dataOff), true);
    descs.setUint32(i * 24 + 8, data.length, true);
    descs.setUint32(i * 24 + 12, useZ ? 1 : 0, true);
    chunks.push(data);
    dataOff += data.length;
  });
  const out = new Uint8Array(dataOff);
  const dv = new DataView(out.buffer);
  out.set(new TextEncoder().encode('KDUMP   '), 0);
  dv.setInt32(8, 6, true);
  dv.setInt32(428, BS, true);
  dv.setInt32(432, subHdrSize, true);
  dv.setInt32(436, (2 * bitmapLen) / BS, true);
  dv.setUint32(440, maxMapnr, true);
  dv.setInt32(460, 1, true);
  dv.setBigUint64(BS + 32, BigInt(2 * BS), true);
  dv.setBigUint64(BS + 40, BigInt(info.length), true);
  dv.setBigUint64(BS + 96, BigInt(maxMapnr), true);
  out.set(info, 2 * BS);
  for (const p of pages) {
    out[bitmapOff + (p.pfn >> 3)] |= 1 << (p.pfn & 7);
    out[bitmapOff + bitmapLen + (p.pfn >> 3)] |= 1 << (p.pfn & 7);
  }
  out.set(new Uint8Array(descs.buffer), descOff);
  let o = descOff + pages.length * 24;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return { bytes: out, bitmapOff, bitmapLen, descOff };
}

/** makedumpfile's flattened stream of a file: a 4096-byte header, then {offset, size} records (big-endian). */
export function flatten(file: Uint8Array, recordSize = 65536, endMarker = true): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(4096);
  head.set(new TextEncoder().encode('makedumpfile'), 0);
  new DataView(head.buffer).setBigUint64(16, 1n, false);
  new DataView(head.buffer).setBigUint64(24, 1n, false);
  parts.push(head);
  // Write the records out of order, as makedumpfile does for the header and bitmaps.
  const offsets: number[] = [];
  for (let o = 0; o < file.length; o += recordSize) offsets.push(o);
  offsets.push(offsets.shift()!);
  for (const o of offsets) {
    const n = Math.min(recordSize, file.length - o);
    const h = new DataView(new ArrayBuffer(16));
    h.setBigInt64(0, BigInt(o), false);
    h.setBigInt64(8, BigInt(n), false);
    parts.push(new Uint8Array(h.buffer), file.subarray(o, o + n));
  }
  if (endMarker) {
    const h = new DataView(new ArrayBuffer(16));
    h.setBigInt64(0, -1n, false);
    h.setBigInt64(8, -1n, false);
    parts.push(new Uint8Array(h.buffer));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let p = 0;
  for (const x of parts) {
    out.set(x, p);
    p += x.length;
  }
  return out;
}
