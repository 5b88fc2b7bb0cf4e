/** A whole file read with errors that name it: the one way the tool reads a small input file. */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { MemleakError } from '../errors.js';

/** A whole (small) file, gunzipped if it is gzip data. */
export function readBinary(file: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new MemleakError('E_IO', `cannot read: ${why}`, { file });
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
