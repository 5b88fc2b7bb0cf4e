/**
 * Files read with errors that name them: a whole small input file (readBinary, readText), or a range
 * of a big one by offset (preadFully), the one way the tool reads either.
 */
import { readFileSync, readSync } from 'node:fs';
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

/** A whole (small) file, gunzipped if it is gzip data. */
export function readBinary(file: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new MemleakError('E_IO', `cannot read: ${readFailure(e)}`, { file });
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch {
      throw new MemleakError('E_FORMAT', 'corrupt gzip data', { file });
    }
  }
  return buf;
}

export function readText(file: string): string {
  const buf = readBinary(file);
  if (buf.includes(0)) throw new MemleakError('E_FORMAT', 'binary file where text was expected (use --raw or --vmcore for memory images)', { file });
  return buf.toString('utf8');
}
