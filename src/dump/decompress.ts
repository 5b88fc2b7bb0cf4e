/**
 * Page decompressors for kdump-compressed dumps (makedumpfile's DUMP_DH_COMPRESSED_* flags). No native
 * build steps: zlib is Node's, zstd is fzstd (pure JS), LZO1X and Snappy are small decoders written
 * here from the format descriptions (lzo1x decompressor format as in minilzo; Snappy's format_description.txt).
 * Each returns the decompressed bytes or throws a plain Error whose message says what is wrong; the
 * kdump reader turns that into a counted corrupt page with its file offset.
 */
import * as zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import type { DeferredPages } from '../util/memory.js';

export type Compression = 'zlib' | 'lzo' | 'snappy' | 'zstd' | 'none';

export function inflateZlib(src: Uint8Array, outLen: number, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(outLen);
  if (reusedInflate(src, out)) return out;
  const r = zlib.inflateSync(src, { maxOutputLength: outLen });
  if (into && r.length === outLen) {
    into.set(r);
    return into;
  }
  return new Uint8Array(r.buffer, r.byteOffset, r.byteLength);
}

/**
 * zlib.inflateSync builds a new zlib stream (JS object, native state, 32 KiB window) for every call:
 * ~30 us per 4 KiB page, 3x the inflate itself. One inflate handle, reset between pages, does the same
 * work (inflateReset keeps the window). It uses the handle behind zlib.createInflate() (`_handle`,
 * writeSync/reset: the calls zlib.inflateSync makes itself), so it is probed once with a known stream,
 * and any surprise (the probe fails, a call throws, an error is reported) falls back to inflateSync.
 */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}
let handle: ZlibHandle | null | undefined;
let handleState: Uint32Array;
let handleError: string | null = null;

function newHandle(): ZlibHandle | null {
  try {
    const s = zlib.createInflate() as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
    const h = s._handle;
    if (!h || typeof h.writeSync !== 'function' || typeof h.reset !== 'function' || !(s._writeState instanceof Uint32Array)) return null;
    h.onerror = (message) => {
      handleError = message;
    };
    handleState = s._writeState;
    return h;
  } catch {
    return null;
  }
}

function probeHandle(): ZlibHandle | null {
  const h = newHandle();
  if (!h) return null;
  handle = h;
  const page = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
  const z = zlib.deflateSync(page);
  const out = new Uint8Array(4096);
  const ok = reusedInflate(z, out) && out.every((b, i) => b === page[i]) && reusedInflate(z, out);
  handle = ok ? h : null;
  return handle;
}

let scratch = new Uint8Array(4097);

/** True when `src` is one whole zlib stream of exactly out.length bytes, inflated into `out`. */
function reusedInflate(src: Uint8Array, out: Uint8Array): boolean {
  if (handle === undefined) probeHandle();
  const h = handle;
  if (!h) return false;
  // One byte of room more than expected: a stream that ends early, runs long, or lacks its adler32
  // trailer ("unexpected end of file" with room left) is an error, not a silently full page. When `out`
  // is followed by another byte of its buffer (a page inside a chunk), zlib writes in place and that
  // byte is put back afterwards; else through a scratch page and a copy.
  const inPlace = out.byteOffset + out.length < out.buffer.byteLength;
  let target: Uint8Array;
  let at = 0;
  let saved = 0;
  if (inPlace) {
    if (whole?.buffer !== out.buffer) whole = new Uint8Array(out.buffer);
    target = whole;
    at = out.byteOffset;
    saved = whole[at + out.length];
  } else {
    if (scratch.length !== out.length + 1) scratch = new Uint8Array(out.length + 1);
    target = scratch;
  }
  handleError = null;
  try {
    h.writeSync(zlib.constants.Z_FINISH, src, 0, src.length, target, at, out.length + 1);
  } catch {
    handle = undefined;
    if (inPlace) target[at + out.length] = saved;
    return false;
  }
  const ok = handleError === null && handleState[0] === 1 && handleState[1] === 0;
  if (handleError !== null) handle = newHandle();
  else h.reset();
  if (inPlace) target[at + out.length] = saved;
  else if (ok) out.set(scratch.subarray(0, out.length));
  return ok;
}

/** A view of the whole buffer the last in-place page lies in (a chunk's shared or wasm memory). */
let whole: Uint8Array | null = null;

export function decompressZstd(src: Uint8Array, outLen: number): Uint8Array {
  return zstdDecompress(src, new Uint8Array(outLen));
}

/** LZO1X (lzo1x_decompress_safe semantics: every read and write is bounds-checked). */
export function decompressLzo1x(src: Uint8Array, outLen: number): Uint8Array {
  const out = new Uint8Array(outLen);
  let ip = 0;
  let op = 0;
  const inEnd = src.length;
  const need = (n: number) => {
    if (ip + n > inEnd) throw new Error('lzo: input overrun');
  };
  const room = (n: number) => {
    if (op + n > outLen) throw new Error('lzo: output overrun');
  };
  const copyLiterals = (n: number) => {
    need(n);
    room(n);
    out.set(src.subarray(ip, ip + n), op);
    ip += n;
    op += n;
  };
  const copyMatch = (dist: number, n: number) => {
    const from = op - dist;
    if (from < 0) throw new Error('lzo: lookbehind overrun');
    room(n);
    for (let k = 0; k < n; k++) out[op + k] = out[from + k];
    op += n;
  };
  const readLen = (base: number): number => {
    let t = 0;
    need(1);
    while (src[ip] === 0) {
      t += 255;
      ip++;
      need(1);
    }
    return t + base + src[ip++];
  };

  let t = 0;
  /**
   * After a match, the low 2 bits of the instruction's second-last byte say how many literals follow
   * (0-3). With some, copy them and read the next match instruction into t (true); with none, the next
   * byte starts a literal run (false).
   */
  const trailingLiterals = (): boolean => {
    const n = src[ip - 2] & 3;
    if (n === 0) return false;
    copyLiterals(n);
    need(1);
    t = src[ip++];
    return true;
  };
  need(1);
  // States: 0 = expect a literal-run instruction, 1 = after the first literal run, 2 = expect a match.
  let state: 0 | 1 | 2 = 0;
  if (src[ip] > 17) {
    t = src[ip++] - 17;
    if (t < 4) {
      copyLiterals(t);
      need(1);
      t = src[ip++];
      state = 2;
    } else {
      copyLiterals(t);
      state = 1;
    }
  }
  for (;;) {
    if (state === 0) {
      need(1);
      t = src[ip++];
      if (t >= 16) {
        state = 2;
      } else {
        if (t === 0) t = readLen(15);
        copyLiterals(t + 3);
        state = 1;
        continue;
      }
    }
    if (state === 1) {
      need(1);
      t = src[ip++];
      if (t < 16) {
        // A 3-byte match right after a literal run (M1 with a 0x800 bias).
        need(1);
        const dist = 1 + 0x0800 + (t >> 2) + (src[ip++] << 2);
        copyMatch(dist, 3);
        if (!trailingLiterals()) {
          state = 0;
          continue;
        }
      }
      state = 2;
    }
    // state 2: t holds a match instruction.
    let dist: number;
    let len: number;
    if (t >= 64) {
      need(1);
      dist = 1 + ((t >> 2) & 7) + (src[ip++] << 3);
      len = (t >> 5) + 1;
    } else if (t >= 32) {
      len = t & 31;
      if (len === 0) len = readLen(31);
      len += 2;
      need(2);
      dist = 1 + (src[ip] >> 2) + (src[ip + 1] << 6);
      ip += 2;
    } else if (t >= 16) {
      let d = (t & 8) << 11;
      len = t & 7;
      if (len === 0) len = readLen(7);
      len += 2;
      need(2);
      d += (src[ip] >> 2) + (src[ip + 1] << 6);
      ip += 2;
      if (d === 0) {
        // End of stream marker.
        if (op !== outLen) throw new Error(`lzo: stream ended after ${op} of ${outLen} bytes`);
        return out;
      }
      dist = d + 0x4000;
    } else {
      need(1);
      dist = 1 + (t >> 2) + (src[ip++] << 2);
      len = 2;
    }
    copyMatch(dist, len);
    state = trailingLiterals() ? 2 : 0;
  }
}

/** Raw Snappy (not the framing format): a varint length, then literal and copy elements. */
export function decompressSnappy(src: Uint8Array, outLen: number): Uint8Array {
  let ip = 0;
  let declared = 0;
  for (let shift = 0; ; shift += 7) {
    if (ip >= src.length || shift > 28) throw new Error('snappy: bad length header');
    const b = src[ip++];
    declared += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (declared !== outLen) throw new Error(`snappy: stream holds ${declared} bytes, expected ${outLen}`);
  const out = new Uint8Array(outLen);
  let op = 0;
  while (ip < src.length) {
    const tag = src[ip++];
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >> 2;
      if (len >= 60) {
        const n = len - 59;
        if (ip + n > src.length) throw new Error('snappy: input overrun');
        len = 0;
        for (let k = 0; k < n; k++) len += src[ip + k] * 2 ** (8 * k);
        ip += n;
      }
      len += 1;
      if (ip + len > src.length || op + len > outLen) throw new Error('snappy: literal overrun');
      out.set(src.subarray(ip, ip + len), op);
      ip += len;
      op += len;
      continue;
    }
    let len: number;
    let dist: number;
    if (kind === 1) {
      if (ip + 1 > src.length) throw new Error('snappy: input overrun');
      len = ((tag >> 2) & 7) + 4;
      dist = ((tag >> 5) << 8) | src[ip++];
    } else if (kind === 2) {
      if (ip + 2 > src.length) throw new Error('snappy: input overrun');
      len = (tag >> 2) + 1;
      dist = src[ip] | (src[ip + 1] << 8);
      ip += 2;
    } else {
      if (ip + 4 > src.length) throw new Error('snappy: input overrun');
      len = (tag >> 2) + 1;
      dist = (src[ip] | (src[ip + 1] << 8) | (src[ip + 2] << 16)) + src[ip + 3] * 2 ** 24;
      ip += 4;
    }
    if (dist === 0 || dist > op || op + len > outLen) throw new Error('snappy: bad copy');
    for (let k = 0; k < len; k++) out[op + k] = out[op - dist + k];
    op += len;
  }
  if (op !== outLen) throw new Error(`snappy: stream ended after ${op} of ${outLen} bytes`);
  return out;
}

/** One page's data in its stored form. */
export function decompressPage(kind: Compression, raw: Uint8Array, pageSize: number, into?: Uint8Array): Uint8Array {
  switch (kind) {
    case 'none': return raw;
    case 'zlib': return inflateZlib(raw, pageSize, into);
    case 'lzo': return decompressLzo1x(raw, pageSize);
    case 'snappy': return decompressSnappy(raw, pageSize);
    case 'zstd': return decompressZstd(raw, pageSize);
  }
}

export const KINDS: Compression[] = ['none', 'zlib', 'lzo', 'snappy', 'zstd'];
/** Per page in PackedPages.index: destination offset, data offset, data length, kind, pfn, file offset. */
const FIELDS = 6;

export type { DeferredPages };

/**
 * Compressed pages collected by the reading thread and decompressed by the thread that scans them,
 * so that decompression runs on every scan worker instead of the one thread that reads the file.
 */
export interface PackedPages {
  data: SharedArrayBuffer;
  index: Float64Array;
  pageSize: number;
}

export class PageDeferral implements DeferredPages {
  private data = new Uint8Array(1 << 20);
  private len = 0;
  private index: number[] = [];

  constructor(readonly pageSize: number) {}

  get pages(): number {
    return this.index.length / FIELDS;
  }

  /** Compressed bytes collected so far. */
  get bytes(): number {
    return this.len;
  }

  add(dstOffset: number, raw: Uint8Array, kind: Compression, pfn: number, fileOffset: number): void {
    if (this.len + raw.length > this.data.length) {
      const bigger = new Uint8Array(Math.max(this.data.length * 2, this.len + raw.length));
      bigger.set(this.data.subarray(0, this.len));
      this.data = bigger;
    }
    this.data.set(raw, this.len);
    this.index.push(dstOffset, this.len, raw.length, KINDS.indexOf(kind), pfn, fileOffset);
    this.len += raw.length;
  }

  at(base: number): DeferredPages {
    return {
      add: (dstOffset, raw, kind, pfn, fileOffset) => this.add(base + dstOffset, raw, kind, pfn, fileOffset),
      at: (more) => this.at(base + more),
    };
  }

  /** The collected pages in shared memory (for a worker), then empty again. */
  take(): PackedPages | null {
    if (this.index.length === 0) return null;
    const data = new SharedArrayBuffer(this.len);
    new Uint8Array(data).set(this.data.subarray(0, this.len));
    const packed = { data, index: Float64Array.from(this.index), pageSize: this.pageSize };
    this.len = 0;
    this.index = [];
    return packed;
  }
}

export interface UnpackFailure {
  dstOffset: number;
  pfn: number;
  fileOffset: number;
  why: string;
}

/**
 * One stored page decoded into dst[at, at + pageSize): null when it worked, else the failure (naming
 * the pfn and file offset); its bytes in `dst` are then undefined (the caller marks its objects not counted), never taken for zeros.
 */
export function decodePageInto(kind: Compression, raw: Uint8Array, pageSize: number, dst: Uint8Array, at: number, pfn: number, fileOffset: number): UnpackFailure | null {
  const into = dst.subarray(at, at + pageSize);
  let page: Uint8Array;
  try {
    page = decompressPage(kind, raw, pageSize, into);
  } catch (err) {
    return { dstOffset: at, pfn, fileOffset, why: `${kind} data does not decompress: ${(err as Error).message}` };
  }
  if (page.length !== pageSize) return { dstOffset: at, pfn, fileOffset, why: `${kind} data gives ${page.length} bytes, not ${pageSize}` };
  if (page.buffer !== into.buffer || page.byteOffset !== into.byteOffset) into.set(page);
  return null;
}

/** Decompresses packed pages into `dst` at their destination offsets; pages that fail are listed, not zeroed. */
export function unpackPages(p: PackedPages, dst: Uint8Array): UnpackFailure[] {
  const failed: UnpackFailure[] = [];
  const data = new Uint8Array(p.data);
  for (let i = 0; i < p.index.length; i += FIELDS) {
    const [at, off, len, k, pfn, fileOffset] = [p.index[i], p.index[i + 1], p.index[i + 2], p.index[i + 3], p.index[i + 4], p.index[i + 5]];
    const f = decodePageInto(KINDS[k], data.subarray(off, off + len), p.pageSize, dst, at, pfn, fileOffset);
    if (f) failed.push(f);
  }
  return failed;
}
