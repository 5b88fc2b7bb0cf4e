/**
 * The data layer's bottom: a file as random-access bytes. Dumps of many GB are read in place with
 * pread (never readFileSync). A makedumpfile "flattened" stream (what QEMU `dump-guest-memory -z`
 * writes) is a file of {offset, size} records; FlattenedSource indexes the records once and then
 * reads the logical file as if `makedumpfile -R` had rebuilt it.
 */
import * as fs from 'node:fs';
import { MemleakError } from '../errors.js';
import { floorIndex } from '../util/sorted.js';

export interface ByteSource {
  /** The path the user gave, for error messages. */
  readonly path: string;
  /** Logical size in bytes. */
  readonly size: number;
  /** Exactly `len` bytes at `offset`; throws E_FORMAT (naming the offset) past the end. */
  read(offset: number, len: number): Uint8Array;
  /** Optional: fills `out` from `offset` without an intermediate buffer (same errors as read). */
  readInto?(out: Uint8Array, offset: number): void;
  close(): void;
}

function ioError(path: string, err: unknown): MemleakError {
  const e = err as NodeJS.ErrnoException;
  const why =
    e.code === 'ENOENT' ? 'no such file' :
    e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' :
    e.code === 'EISDIR' ? 'is a directory' : (e.message ?? String(err));
  return new MemleakError('E_IO', `cannot read: ${why}`, { file: path });
}

export class FileSource implements ByteSource {
  readonly path: string;
  readonly size: number;
  private fd: number;

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
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + out.length > this.size) {
      throw new MemleakError('E_FORMAT', `needs ${out.length} bytes at offset ${offset} but the file ends at ${this.size}: truncated`, {
        file: this.path,
        offset,
      });
    }
    let done = 0;
    while (done < out.length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, out, done, out.length - done, offset + done);
      } catch (err) {
        throw ioError(this.path, err);
      }
      if (n === 0) throw new MemleakError('E_FORMAT', 'file ended early: truncated', { file: this.path, offset: offset + done });
      done += n;
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
    const rows: [number, number, number][] = [];
    let pos = FLAT_HEADER_SIZE;
    let ended = false;
    while (pos + RECORD_HEADER <= file.size) {
      const h = new DataView(file.read(pos, RECORD_HEADER).buffer);
      const off = h.getBigInt64(0, false);
      const len = h.getBigInt64(8, false);
      if (off === -1n && len === -1n) {
        ended = true;
        break;
      }
      if (off < 0n || len < 0n || off + len > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new MemleakError('E_FORMAT', `flattened dump record has offset ${off} size ${len}: corrupt record header`, {
          file: this.path,
          offset: pos,
        });
      }
      const data = pos + RECORD_HEADER;
      if (data + Number(len) > file.size) {
        throw new MemleakError('E_FORMAT', `flattened dump record of ${len} bytes runs past the end of the file (${file.size}): truncated`, {
          file: this.path,
          offset: pos,
        });
      }
      if (len > 0n) rows.push([Number(off), Number(len), data]);
      pos = data + Number(len);
    }
    if (!ended) {
      throw new MemleakError('E_FORMAT', 'flattened dump has no end marker: truncated (the dump was cut short)', {
        file: this.path,
        offset: pos,
      });
    }
    rows.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < rows.length; i++) {
      // makedumpfile -R would let the later record win; QEMU never overlaps, so an overlap means corruption.
      if (rows[i][0] < rows[i - 1][0] + rows[i - 1][1]) {
        throw new MemleakError('E_FORMAT', `flattened dump records overlap at logical offset ${rows[i][0]}`, {
          file: this.path,
          offset: rows[i][2] - RECORD_HEADER,
        });
      }
    }
    this.starts = Float64Array.from(rows, (r) => r[0]);
    this.lens = Float64Array.from(rows, (r) => r[1]);
    this.filePos = Float64Array.from(rows, (r) => r[2]);
    const last = rows.length - 1;
    this.size = last < 0 ? 0 : rows[last][0] + rows[last][1];
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
