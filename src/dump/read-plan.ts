/**
 * Reads planned on one thread and done on another. The thread that orchestrates a scan walks the dump's
 * metadata (translation, segments, kdump page descriptors) and writes down which bytes of the file go
 * where in a chunk; the scan worker preads them straight into the memory it scans (descriptors are per
 * process, so every worker thread can use the main thread's) and decompresses stored pages there. Reading
 * and decompression then run on every scan worker, and nothing is copied between threads.
 */
import { MemleakError } from '../errors.js';
import { TRUNCATED } from './byte-source.js';
import { preadFully } from '../util/read-file.js';
import { decodePageInto, KINDS, type Compression, type UnpackFailure } from './decompress.js';
import type { ReadPlanner } from '../util/memory.js';

/** A plan as it travels to the worker (structured-cloned: typed arrays, no shared memory). */
export interface PlannedReads {
  fd: number;
  /** The dump's path, for error messages. */
  path: string;
  /** [dst, filePos, len] triples; filePos -1: zeros. */
  direct: Float64Array;
  /** [stageOffset, filePos, len] triples: stored page data read into the staging area. */
  staged: Float64Array;
  stageBytes: number;
  /** [dst, stageOffset, len, kind, pfn, fileOffset]: pages decoded from the staging area. */
  pages: Float64Array;
  pageSize: number;
  /** Bytes the planning thread read itself (objects of a slab the dump has only in part): [dst, at, len] into `inline`. */
  inlineAt: Float64Array;
  inline: Uint8Array;
}

export class ReadPlan implements ReadPlanner {
  private fd = -1;
  private path = '';
  private direct: number[] = [];
  private staged: number[] = [];
  private pages: number[] = [];
  private inlineAt: number[] = [];
  private inline: number[] = [];
  private stageBytes = 0;
  /** Bytes the plan reads from the file (stored page data at its stored size), for the phase's byte count. */
  fileBytes = 0;

  constructor(readonly pageSize: number) {}

  useFile(fd: number, path: string): boolean {
    if (this.fd >= 0 && this.fd !== fd) return false;
    this.fd = fd;
    this.path = path;
    return true;
  }

  read(dst: number, filePos: number, len: number): void {
    if (len <= 0) return;
    const d = this.direct;
    const k = d.length - 3;
    // Adjacent in the chunk and in the file (or both zeros): one pread.
    if (k >= 0 && d[k] + d[k + 2] === dst && ((filePos < 0 && d[k + 1] < 0) || (filePos >= 0 && d[k + 1] >= 0 && d[k + 1] + d[k + 2] === filePos))) d[k + 2] += len;
    else d.push(dst, filePos, len);
    if (filePos >= 0) this.fileBytes += len;
  }

  stage(filePos: number, len: number): number {
    const at = this.stageBytes;
    const s = this.staged;
    const k = s.length - 3;
    if (k >= 0 && filePos >= 0 && s[k + 1] >= 0 && s[k + 1] + s[k + 2] === filePos) s[k + 2] += len;
    else s.push(at, filePos, len);
    this.stageBytes += len;
    if (filePos >= 0) this.fileBytes += len;
    return at;
  }

  page(dst: number, stageOffset: number, len: number, kind: Compression, pfn: number, fileOffset: number): void {
    this.pages.push(dst, stageOffset, len, KINDS.indexOf(kind), pfn, fileOffset);
  }

  /** Bytes already read (an object of a slab the dump holds only in part) for the chunk at dst. */
  bytes(dst: number, data: Uint8Array): void {
    this.inlineAt.push(dst, this.inline.length, data.length);
    for (const b of data) this.inline.push(b);
  }

  /** Where the plan stands, to undo a run that turned out not to be in the dump. */
  mark(): number[] {
    return [this.direct.length, this.staged.length, this.pages.length, this.inlineAt.length, this.inline.length, this.stageBytes, this.fileBytes];
  }

  rollback(m: number[]): void {
    [this.direct.length, this.staged.length, this.pages.length, this.inlineAt.length, this.inline.length, this.stageBytes, this.fileBytes] = m;
  }

  /** True when the plan has stored pages to decode (a page may then fail and leave objects uncounted). */
  get decodes(): boolean {
    return this.pages.length > 0;
  }

  /** The plan for the worker, then empty again. */
  take(): PlannedReads {
    const p: PlannedReads = {
      fd: this.fd,
      path: this.path,
      direct: Float64Array.from(this.direct),
      staged: Float64Array.from(this.staged),
      stageBytes: this.stageBytes,
      pages: Float64Array.from(this.pages),
      pageSize: this.pageSize,
      inlineAt: Float64Array.from(this.inlineAt),
      inline: Uint8Array.from(this.inline),
    };
    this.direct = [];
    this.staged = [];
    this.pages = [];
    this.inlineAt = [];
    this.inline = [];
    this.stageBytes = 0;
    this.fileBytes = 0;
    return p;
  }
}

let staging = new Uint8Array(1 << 16);

/**
 * Does a plan: every direct read into `dst`, the stored pages through one staging buffer of this
 * thread, decoded into `dst`, then the inline bytes. A page that does not decode is listed (its bytes in
 * `dst` are undefined: the caller marks its objects not counted), never taken for zeros.
 */
export function runPlan(p: PlannedReads, dst: Uint8Array): UnpackFailure[] {
  const read = (into: Uint8Array, filePos: number) => {
    if (filePos < 0) into.fill(0);
    else preadFully(p.fd, into, filePos, p.path, TRUNCATED);
  };
  const d = p.direct;
  for (let i = 0; i < d.length; i += 3) {
    if (d[i] + d[i + 2] > dst.length) throw new MemleakError('E_INTERNAL', `read plan writes past its chunk (${d[i]} + ${d[i + 2]} > ${dst.length})`);
    read(dst.subarray(d[i], d[i] + d[i + 2]), d[i + 1]);
  }
  const failed: UnpackFailure[] = [];
  if (p.pages.length) {
    if (staging.length < p.stageBytes) staging = new Uint8Array(Math.max(p.stageBytes, 2 * staging.length));
    const s = p.staged;
    for (let i = 0; i < s.length; i += 3) read(staging.subarray(s[i], s[i] + s[i + 2]), s[i + 1]);
    const x = p.pages;
    for (let i = 0; i < x.length; i += 6) {
      const raw = staging.subarray(x[i + 1], x[i + 1] + x[i + 2]);
      const f = decodePageInto(KINDS[x[i + 3]], raw, p.pageSize, dst, x[i], x[i + 4], x[i + 5]);
      if (f) failed.push(f);
    }
  }
  const a = p.inlineAt;
  for (let i = 0; i < a.length; i += 3) dst.set(p.inline.subarray(a[i + 1], a[i + 1] + a[i + 2]), a[i]);
  return failed;
}
