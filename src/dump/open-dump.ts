/**
 * Which reader owns a file: each probe looks at the first bytes and says "mine" or "not mine"
 * (Volatility's layer stacking). Order: flattened stream (then the kdump inside it), kdump, ELF.
 */
import { MemleakError } from '../errors.js';
import { gunzipSync } from 'node:zlib';
import { gzipDamage } from '../util/read-file.js';
import { BufferSource, FileSource, FlattenedSource, isFlattened, type ByteSource } from './byte-source.js';
import type { Dump } from './dump.js';
import { isElf, openElfCore } from './elf-core.js';
import { isKdump, openKdump } from './kdump.js';

export function openDumpSource(src: ByteSource, opts: { kcore?: boolean } = {}): Dump {
  if (src.size === 0) throw new MemleakError('E_FORMAT', 'dump file is empty', { file: src.path, offset: 0 });
  if (isFlattened(src)) {
    const flat = new FlattenedSource(src);
    if (!isKdump(flat)) {
      throw new MemleakError('E_FORMAT', 'flattened makedumpfile stream does not hold a "KDUMP   " header at logical offset 0', { file: src.path, offset: 4096 });
    }
    return openKdump(flat, 'flattened, ');
  }
  if (isKdump(src)) return openKdump(src, '');
  if (isElf(src)) return openElfCore(src, { kcore: opts.kcore ?? false });
  // A known magic whose header is cut or damaged is that format's damage, not "no known magic".
  const sig = new TextDecoder('latin1').decode(src.read(0, Math.min(16, src.size)));
  if (sig.startsWith('makedumpfile')) {
    throw new MemleakError('E_FORMAT', src.size < 4096
      ? `makedumpfile flattened stream of ${src.size} bytes: shorter than its 4096-byte header, truncated`
      : 'makedumpfile flattened signature with damaged header bytes (the signature is 12 characters and 4 NULs): corrupt header', { file: src.path, offset: src.size < 4096 ? src.size : 12 });
  }
  if (sig.startsWith('\x7fELF')) {
    throw new MemleakError('E_FORMAT', `ELF file of ${src.size} bytes: shorter than its 64-byte header, truncated`, { file: src.path, offset: src.size });
  }
  const head = src.read(0, Math.min(8, src.size));
  const shown = [...head].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new MemleakError(
    'E_FORMAT',
    `not a vmcore: bytes ${shown} at offset 0 are no known magic (expected ELF core, "KDUMP   " or a makedumpfile flattened stream)`,
    { file: src.path, offset: 0 },
  );
}

/** Compressed extracts (`extract -o x.gz`) are inflated in memory; whole vmcores never are. */
const MAX_GZIP_DUMP = 512 << 20;
/** ...and inflated in memory up to this size: gzip of zeros inflates a thousandfold. */
const MAX_GZIP_INFLATED = 2 * 2 ** 30;

export function openDump(path: string): Dump {
  let src: ByteSource = new FileSource(path);
  if (src.size >= 2) {
    const m = src.read(0, 2);
    if (m[0] === 0x1f && m[1] === 0x8b) {
      if (src.size > MAX_GZIP_DUMP) {
        src.close();
        throw new MemleakError('E_FORMAT', `gzip-compressed dump of ${src.size} bytes: decompress it first (only small extracts are read compressed)`, { file: path, offset: 0 });
      }
      const gz = src.read(0, src.size);
      src.close();
      let raw: Uint8Array;
      try {
        raw = gunzipSync(gz, { maxOutputLength: MAX_GZIP_INFLATED });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new MemleakError('E_FORMAT', `gzip-compressed dump inflates to more than ${MAX_GZIP_INFLATED / 2 ** 20} MiB: decompress it first (only small extracts are read compressed)`, { file: path, offset: 0 });
        }
        throw new MemleakError('E_FORMAT', gzipDamage(e), { file: path, offset: 0 });
      }
      src = new BufferSource(path, raw);
    }
  }
  try {
    return openDumpSource(src, { kcore: path === '/proc/kcore' });
  } catch (err) {
    src.close();
    throw err;
  }
}
