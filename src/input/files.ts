/**
 * `src/input/`: text and raw inputs other tools produce (crash rd/kmem, /proc/slabinfo, raw pages) and
 * recording directories; parsers only, no analysis.
 *
 * Input files by content: sniffing so flags need not match names, and the layout of a recording directory.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MemleakError } from '../errors.js';
import { looksLikeRd } from './crash-rd.js';
import { looksLikeKmem } from './crash-kmem.js';
import { looksLikeSlabinfo } from './slabinfo.js';
import { looksLikeTrace } from '../trace/ftrace.js';
import { readText } from '../util/read-file.js';

export type TextKind = 'rd' | 'kmem' | 'slabinfo' | 'kallsyms' | 'trace';

export function sniffText(text: string): TextKind | null {
  if (looksLikeSlabinfo(text)) return 'slabinfo';
  if (looksLikeKmem(text)) return 'kmem';
  const first = text.split('\n', 1)[0];
  if (/^[0-9a-f]{16} [A-Za-z] \S/.test(first)) return 'kallsyms';
  if (looksLikeRd(text)) return 'rd';
  if (looksLikeTrace(text)) return 'trace';
  return null;
}

export function expectKind(file: string, text: string, want: TextKind[]): TextKind {
  const k = sniffText(text);
  if (k === null) {
    throw new MemleakError('E_FORMAT', `not a format sysak memleak reads (crash rd/kmem text, /proc/slabinfo, /proc/kallsyms, ftrace text)`, { file, line: 1 });
  }
  if (!want.includes(k)) throw new MemleakError('E_FORMAT', `this is ${k} output, expected ${want.join(' or ')}`, { file });
  return k;
}

/** Reads a text file that must be of the given kind (sniffed from its content). */
export function readAs(file: string, kind: TextKind): string {
  const text = readText(file);
  expectKind(file, text, [kind]);
  return text;
}

/** Files of a recording directory laid out as ../shared/recordings (and samples/). */
export interface RecordingFiles {
  dir: string;
  trace: string | null;
  kallsyms: string | null;
  slabinfo: string | null;
  slabinfoBefore: string | null;
  meminfoBefore: string | null;
  meminfoAfter: string | null;
  vmallocinfoBefore: string | null;
  vmallocinfoAfter: string | null;
  usageSeries: string | null;
  kmem: string | null;
  rd: string[];
  vmcore: string | null;
  /** BTF saved beside an extract (live --save keeps /sys/kernel/btf/vmlinux here). */
  btf: string | null;
  cache: string | null;
}

export function findRecording(dir: string): RecordingFiles {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MemleakError('E_IO', 'not a directory', { file: dir });
  const pick = (...names: string[]) => {
    for (const n of names) {
      const p = join(dir, n);
      if (existsSync(p)) return p;
    }
    return null;
  };
  const crashDir = join(dir, 'crash');
  // crash/ is the folder of crash's text outputs; a file of that name holds none (and readdir would throw ENOTDIR).
  const crashFiles = existsSync(crashDir) && statSync(crashDir).isDirectory() ? readdirSync(crashDir) : [];
  const kmemName = crashFiles.find((f) => /^kmem_S_.+\.txt(\.gz)?$/.test(f)) ?? null;
  const cache = kmemName ? kmemName.replace(/^kmem_S_/, '').replace(/\.txt(\.gz)?$/, '') : null;
  const rd = pick('crash/rd64_pages.txt', 'crash/rd64_pages.txt.gz', 'crash/rdS_pages.txt', 'crash/rdS_pages.txt.gz');
  return {
    dir,
    trace: pick('guest/trace.txt', 'guest/trace.txt.gz', 'trace.txt'),
    kallsyms: pick('guest/kallsyms.txt', 'guest/kallsyms.txt.gz', 'kallsyms.txt'),
    slabinfo: pick('guest/slabinfo.after', 'guest/slabinfo.after.gz', 'slabinfo.after', 'slabinfo'),
    slabinfoBefore: pick('guest/slabinfo.before', 'guest/slabinfo.before.gz', 'slabinfo.before'),
    meminfoBefore: pick('guest/meminfo.before', 'guest/meminfo.before.gz', 'meminfo.before'),
    meminfoAfter: pick('guest/meminfo.after', 'guest/meminfo.after.gz', 'meminfo.after'),
    vmallocinfoBefore: pick('guest/vmallocinfo.before', 'guest/vmallocinfo.before.gz', 'vmallocinfo.before'),
    vmallocinfoAfter: pick('guest/vmallocinfo.after', 'guest/vmallocinfo.after.gz', 'vmallocinfo.after'),
    usageSeries: pick('guest/usage_series.json'),
    kmem: kmemName ? join(crashDir, kmemName) : null,
    rd: rd ? [rd] : [],
    vmcore: pick('vmcore.kdump', 'vmcore.extract.gz', 'vmcore.extract', 'vmcore.elf', 'vmcore'),
    btf: pick('guest/btf_vmlinux.bin.gz', 'guest/btf_vmlinux.bin'),
    cache,
  };
}
