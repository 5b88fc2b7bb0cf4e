/**
 * Files read with errors that name them: a whole small input file (readBinary, readText), or a range
 * of a big one by offset (preadFully), the one way the tool reads either.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { MemleakError, type ErrorCode } from '../errors.js';

/** Why reading a file failed, in the words a user knows for the usual errno codes. */
export function readFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' :
    e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' :
    e.code === 'EISDIR' ? 'is a directory' : (e.message ?? String(err));
}

/** What a file that ends before a read is full means to its reader (a truncated dump, a raw file that shrank). */
export interface ShortRead {
  code: ErrorCode;
  message: string;
}

const SHORT_READ: ShortRead = { code: 'E_IO', message: 'short read' };

/**
 * Fills `out` from fd at `offset` (pread: no shared file position, so any thread of the process may
 * call it on the same descriptor). A file that ends first is `short` (by default an E_IO "short read":
 * a file that shrank after it was opened), named with the offset, never a range of zeros.
 */
export function preadFully(fd: number, out: Uint8Array, offset: number, file: string, short: ShortRead = SHORT_READ): void {
  let done = 0;
  while (done < out.length) {
    let n: number;
    try {
      n = readSync(fd, out, done, out.length - done, offset + done);
    } catch (err) {
      throw new MemleakError('E_IO', `cannot read: ${readFailure(err)}`, { file, offset: offset + done });
    }
    if (n <= 0) throw new MemleakError(short.code, short.message, { file, offset: offset + done });
    done += n;
  }
}

/**
 * The most a whole-file input may hold: V8's longest string (2^29 - 24 characters), so that the text
 * of any file read whole can become one string. A bigger file, a device that never ends (/dev/zero,
 * /dev/urandom) or gzip data that inflates past it is refused by size before it fills memory.
 */
export const MAX_WHOLE_FILE = 0x1fffffe8;
const CHUNK = 1 << 20;
const MAX_MIB = Math.round(MAX_WHOLE_FILE / 2 ** 20);

function tooBig(file: string, what: string): MemleakError {
  return new MemleakError('E_FORMAT', `${what}: larger than the ${MAX_MIB} MiB an input read whole may hold (cut a trace to the leak's window)`, { file, offset: MAX_WHOLE_FILE });
}

/**
 * A file's bytes: a regular file in one buffer of its size, anything else (a pipe, a FIFO, a character
 * device, /proc/kallsyms) by reads of 1 MiB, so that at most MAX_WHOLE_FILE bytes are ever held. `stop` sees each new
 * piece and may end the read early by throwing (a NUL where text was expected).
 */
function readWhole(file: string, stop?: (piece: Uint8Array, offset: number) => void): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new MemleakError('E_IO', `cannot read: ${readFailure(e)}`, { file });
  }
  const read = (b: Buffer, at: number, len: number, offset: number) => {
    try {
      return readSync(fd, b, at, len, null);
    } catch (err) {
      throw new MemleakError('E_IO', `cannot read: ${readFailure(err)}`, { file, offset });
    }
  };
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new MemleakError('E_IO', 'cannot read: is a directory', { file });
    // /proc and /sys files say size 0: read like a pipe.
    if (st.isFile() && st.size > 0) {
      if (st.size > MAX_WHOLE_FILE) throw tooBig(file, `${st.size} bytes`);
      const b = Buffer.allocUnsafe(st.size);
      let done = 0;
      for (let n; done < st.size && (n = read(b, done, st.size - done, done)) > 0;) done += n;
      stop?.(b.subarray(0, done), 0);
      return b.subarray(0, done);
    }
    const pieces: Buffer[] = [];
    let total = 0;
    for (;;) {
      const b = Buffer.allocUnsafe(CHUNK);
      const n = read(b, 0, CHUNK, total);
      if (n <= 0) break;
      stop?.(b.subarray(0, n), total);
      pieces.push(b.subarray(0, n));
      total += n;
      if (total > MAX_WHOLE_FILE) throw tooBig(file, `more than ${MAX_WHOLE_FILE} bytes from a pipe or device`);
    }
    return Buffer.concat(pieces, total);
  } finally {
    closeSync(fd);
  }
}

/** What zlib says about damaged gzip data, in the words of the damage. */
export function gzipDamage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'Z_BUF_ERROR' || /unexpected end/.test(e.message ?? '')) return 'corrupt gzip data: it ends early (truncated)';
  if (/incorrect (data|length) check/.test(e.message ?? '')) return `corrupt gzip data: ${e.message} (damaged trailer or contents)`;
  return `corrupt gzip data: ${e.message ?? String(err)}`;
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

function gunzipWhole(file: string, buf: Buffer): Buffer {
  try {
    return gunzipSync(buf, { maxOutputLength: MAX_WHOLE_FILE });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooBig(file, `gzip data that inflates to more than ${MAX_WHOLE_FILE} bytes`);
    throw new MemleakError('E_FORMAT', gzipDamage(e), { file });
  }
}

/** A whole (small) file, gunzipped if it is gzip data. */
export function readBinary(file: string): Buffer {
  const buf = readWhole(file);
  return isGzip(buf) ? gunzipWhole(file, buf) : buf;
}

/** The binary files people give where text belongs, by their magic, and the text to give instead. */
const BINARY_MAGIC: [string, string][] = [
  ['\x17\x08\x44tracing', "this is trace-cmd's binary trace.dat: give the text of `trace-cmd report`"],
  ['PERFILE2', 'this is perf.data: give the text of `perf script`'],
  ['\x7fELF', 'an ELF file: give a vmcore or an extract with --vmcore'],
  ['KDUMP   ', 'a kdump vmcore: give it with --vmcore'],
  ['makedumpfile', 'a flattened kdump vmcore: give it with --vmcore'],
  ['\x9f\xeb', 'BTF: give it with --btf'],
];

function binaryHint(head: Uint8Array): string {
  const s = Buffer.from(head.subarray(0, 16)).toString('latin1');
  return BINARY_MAGIC.find(([magic]) => s.startsWith(magic))?.[1] ?? 'use --raw or --vmcore for memory images';
}

/**
 * A whole text file (gunzipped if it is gzip data), CRLF line ends read as LF (a file copied through
 * Windows or a mail client): every parser then sees one kind of line end, and line numbers stay those
 * of the file. A NUL byte means a memory image or other binary file, named with its offset; a device
 * of zeros is refused at its first chunk.
 */
export function readText(file: string): string {
  let gz = false;
  const nulIn = (b: Uint8Array, offset: number) => {
    const at = b.indexOf(0);
    return at < 0 ? -1 : offset + at;
  };
  const refuse = (head: Uint8Array, offset: number) =>
    new MemleakError('E_FORMAT', `binary file where text was expected (a NUL byte; ${binaryHint(head)})`, { file, offset });
  let buf = readWhole(file, (chunk, offset) => {
    if (offset === 0) gz = isGzip(chunk);
    if (gz) return;
    const at = nulIn(chunk, offset);
    if (at >= 0) throw refuse(offset === 0 ? chunk : new Uint8Array(0), at);
  });
  if (gz) {
    buf = gunzipWhole(file, buf);
    const at = nulIn(buf, 0);
    if (at >= 0) throw refuse(buf, at);
  }
  const text = buf.toString('utf8');
  return text.includes('\r\n') ? text.replace(/\r\n/g, '\n') : text;
}
