/**
 * The data layer's bottom: a file as random-access bytes. Dumps of many GB are read in place with
 * pread (never readFileSync). A makedumpfile "flattened" stream (what QEMU `dump-guest-memory -z`
 * writes) is a file of {offset, size} records; FlattenedSource indexes the records once and then
 * reads the logical file as if `makedumpfile -R` had rebuilt it.
 */
import * as fs from 'node:fs';
import { MemleakError } from '../errors.js';
import { floorIndex } from '../util/sorted.js';
import { preadFully, readFailure, type ShortRead } from '../util/read-file.js';

export interface ByteSource {
  /** The path the user gave, for error messages. */
  readonly path: string;
  /** Logical size in bytes. */
  readonly size: number;
  /** Exactly `len` bytes at `offset`; throws E_FORMAT (naming the offset) past the end. */
  read(offset: number, len: number): Uint8Array;
  /** Optional: fills `out` from `offset` without an intermediate buffer (same errors as read). */
  readInto?(out: Uint8Array, offset: number): void;
  /**
   * Optional, for reads another thread does (dump/read-plan.ts): the descriptor of the file behind the
   * source, and where logical [offset, offset + len) lies in it: emit(at, filePos, n) per piece in
   * order (filePos -1: zeros). Throws as read() past the end.
   */
  readonly fd?: number;
  pieces?(offset: number, len: number, emit: (at: number, filePos: number, n: number) => void): void;
  close(): void;
}

function ioError(path: string, err: unknown): MemleakError {
  return new MemleakError('E_IO', `cannot read: ${readFailure(err)}`, { file: path });
}

/** A dump that ends before a read is full was cut short (a copy or a dump write that did not finish). */
export const TRUNCATED: ShortRead = { code: 'E_FORMAT', message: 'file ended early: truncated' };

export class FileSource implements ByteSource {
  readonly path: string;
  readonly size: number;
  fd: number;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = fs.openSync(path, 'r');
      const st = fs.fstatSync(this.fd);
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      // /proc/kcore reports its size as the span of the address space; st.size is what we may read.
      this.size = st.size;
    } catch (err) {
      throw ioError(path, err);
    }
  }

  read(offset: number, len: number): Uint8Array {
    // Check before allocating: a length from a damaged header may be gigabytes.
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || len < 0 || offset < 0 || offset + len > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${len} bytes at offset ${offset} but the file ends at ${this.size}: truncated or a damaged size field`, {
        file: this.path,
        offset: Number.isSafeInteger(offset) && offset >= 0 ? offset : 0,
      });
    }
    const out = new Uint8Array(len);
    this.readInto(out, offset);
    return out;
  }

  /** Fills `out` from `offset`; short reads are a truncated file. */
  readInto(out: Uint8Array, offset: number): void {
    this.checkRange(offset, out.length);
    preadFully(this.fd, out, offset, this.path, TRUNCATED);
  }

  pieces(offset: number, len: number, emit: (at: number, filePos: number, n: number) => void): void {
    this.checkRange(offset, len);
    emit(0, offset, len);
  }

  private checkRange(offset: number, len: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + len > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${len} bytes at offset ${offset} but the file ends at ${this.size}: truncated`, {
        file: this.path,
        offset,
      });
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Bytes already in memory (small extracts, tests). */
export class BufferSource implements ByteSource {
  readonly size: number;
  private readonly bytes: Uint8Array;
  constructor(readonly path: string, bytes: Uint8Array) {
    // A plain Uint8Array view: Buffer#slice would share memory, and readers wrap `.buffer` in DataViews.
    this.bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.length;
  }
  read(offset: number, len: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || len < 0 || offset < 0 || offset + len > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${len} bytes at offset ${offset} but the file ends at ${this.size}: truncated or a damaged size field`, {
        file: this.path,
        offset: Number.isSafeInteger(offset) && offset >= 0 ? offset : 0,
      });
    }
    return this.bytes.slice(offset, offset + len);
  }
  close(): void {}
}

const FLAT_SIGNATURE = 'makedumpfile';
const FLAT_HEADER_SIZE = 4096;
const RECORD_HEADER = 16;

/** makedumpfile's flattened format (makedumpfile.h: MAKEDUMPFILE_SIGNATURE, struct makedumpfile_data_header). */
export function isFlattened(src: ByteSource): boolean {
  if (src.size < FLAT_HEADER_SIZE) return false;
  const h = src.read(0, 16);
  return new TextDecoder().decode(h.subarray(0, 12)) === FLAT_SIGNATURE && h[12] === 0;
}

export class FlattenedSource implements ByteSource {
  readonly path: string;
  readonly size: number;
  /** Records sorted by logical offset: logical start, length, position of the data in the file. */
  private readonly starts: Float64Array;
  private readonly lens: Float64Array;
  private readonly filePos: Float64Array;

  constructor(private readonly file: ByteSource) {
    this.path = file.path;
    // One pass over the record headers (QEMU writes a record per page or descriptor block: 57,266 of
    // them for an 8 GiB guest). Each header's position depends on the previous length, so the reads
    // cannot be batched; each is one 16-byte pread into a reused buffer, parsed without bigints, into
    // growing typed arrays (an allocation, a DataView and three bigints per record cost 3-5x the pread).
    let cap = 1024;
    let starts = new Float64Array(cap);
    let lens = new Float64Array(cap);
    let filePos = new Float64Array(cap);
    let n = 0;
    let sorted = true;
    const h = new Uint8Array(RECORD_HEADER);
    const hv = new DataView(h.buffer);
    const readHeader = file.readInto ? (pos: number) => file.readInto!(h, pos) : (pos: number) => h.set(file.read(pos, RECORD_HEADER));
    let pos = FLAT_HEADER_SIZE;
    let ended = false;
    while (pos + RECORD_HEADER <= file.size) {
      readHeader(pos);
      // Big-endian int64s: a high word with the sign bit set is negative (-1 is the end marker).
      const offHi = hv.getUint32(0, false);
      const offLo = hv.getUint32(4, false);
      const lenHi = hv.getUint32(8, false);
      const lenLo = hv.getUint32(12, false);
      if (offHi === 0xffffffff && offLo === 0xffffffff && lenHi === 0xffffffff && lenLo === 0xffffffff) {
        ended = true;
        break;
      }
      const off = offHi * 2 ** 32 + offLo;
      const len = lenHi * 2 ** 32 + lenLo;
      // 2^53 covers every real dump; a header beyond it (or negative) is damage.
      if (offHi >= 0x200000 || lenHi >= 0x200000 || off + len > Number.MAX_SAFE_INTEGER) {
        const sOff = hv.getBigInt64(0, false);
        const sLen = hv.getBigInt64(8, false);
        throw new MemleakError('E_FORMAT', `flattened dump record has offset ${sOff} size ${sLen}: corrupt record header`, {
          file: this.path,
          offset: pos,
        });
      }
      const data = pos + RECORD_HEADER;
      if (data + len > file.size) {
        throw new MemleakError('E_FORMAT', `flattened dump record of ${len} bytes runs past the end of the file (${file.size}): truncated`, {
          file: this.path,
          offset: pos,
        });
      }
      if (len > 0) {
        if (n === cap) {
          cap *= 2;
          const grow = (a: Float64Array) => {
            const b = new Float64Array(cap);
            b.set(a);
            return b;
          };
          starts = grow(starts);
          lens = grow(lens);
          filePos = grow(filePos);
        }
        if (n > 0 && off < starts[n - 1]) sorted = false;
        starts[n] = off;
        lens[n] = len;
        filePos[n] = data;
        n++;
      }
      pos = data + len;
    }
    if (!ended) {
      throw new MemleakError('E_FORMAT', 'flattened dump has no end marker: truncated (the dump was cut short)', {
        file: this.path,
        offset: pos,
      });
    }
    if (!sorted) {
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => starts[a] - starts[b]);
      const pick = (a: Float64Array) => Float64Array.from(order, (i) => a[i]);
      [starts, lens, filePos] = [pick(starts), pick(lens), pick(filePos)];
    } else {
      [starts, lens, filePos] = [starts.slice(0, n), lens.slice(0, n), filePos.slice(0, n)];
    }
    for (let i = 1; i < n; i++) {
      // makedumpfile -R would let the later record win; QEMU never overlaps, so an overlap means corruption.
      if (starts[i] < starts[i - 1] + lens[i - 1]) {
        throw new MemleakError('E_FORMAT', `flattened dump records overlap at logical offset ${starts[i]}`, {
          file: this.path,
          offset: filePos[i] - RECORD_HEADER,
        });
      }
    }
    this.starts = starts;
    this.lens = lens;
    this.filePos = filePos;
    this.size = n === 0 ? 0 : starts[n - 1] + lens[n - 1];
  }

  /** Logical [offset, offset+len); holes between records read as zeros, as in the rebuilt file. */
  read(offset: number, len: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || len < 0 || offset < 0 || offset + len > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${len} bytes at logical offset ${offset} but the dump ends at ${this.size}: truncated or a damaged size field`, {
        file: this.path,
        offset: Number.isSafeInteger(offset) && offset >= 0 ? offset : 0,
      });
    }
    const out = new Uint8Array(len);
    this.fill(out, offset);
    return out;
  }

  readInto(out: Uint8Array, offset: number): void {
    if (offset < 0 || offset + out.length > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${out.length} bytes at logical offset ${offset} but the dump ends at ${this.size}: truncated`, {
        file: this.path,
        offset,
      });
    }
    out.fill(0);
    this.fill(out, offset);
  }

  get fd(): number | undefined {
    return this.file.fd;
  }

  /** The file pieces of logical [offset, offset + len): records' data, and -1 for the holes between them. */
  pieces(offset: number, len: number, emit: (at: number, filePos: number, n: number) => void): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || len < 0 || offset < 0 || offset + len > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${len} bytes at logical offset ${offset} but the dump ends at ${this.size}: truncated or a damaged size field`, {
        file: this.path,
        offset: Number.isSafeInteger(offset) && offset >= 0 ? offset : 0,
      });
    }
    let i = Math.max(0, floorIndex(this.starts, offset));
    const end = offset + len;
    let at = offset;
    for (; i < this.starts.length && this.starts[i] < end && at < end; i++) {
      const s = Math.max(at, this.starts[i]);
      const e = Math.min(end, this.starts[i] + this.lens[i]);
      if (e <= s) continue;
      if (s > at) emit(at - offset, -1, s - at);
      emit(s - offset, this.filePos[i] + (s - this.starts[i]), e - s);
      at = e;
    }
    if (at < end) emit(at - offset, -1, end - at);
  }

  /** Copies the records overlapping [offset, offset + out.length) into `out` (holes stay as they are). */
  private fill(out: Uint8Array, offset: number): void {
    let i = Math.max(0, floorIndex(this.starts, offset));
    const end = offset + out.length;
    for (; i < this.starts.length && this.starts[i] < end; i++) {
      const s = Math.max(offset, this.starts[i]);
      const e = Math.min(end, this.starts[i] + this.lens[i]);
      if (e <= s) continue;
      const dst = out.subarray(s - offset, e - offset);
      const pos = this.filePos[i] + (s - this.starts[i]);
      if (this.file.readInto) this.file.readInto(dst, pos);
      else dst.set(this.file.read(pos, e - s));
    }
  }

  close(): void {
    this.file.close();
  }
}
