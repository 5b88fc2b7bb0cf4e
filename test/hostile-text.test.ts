/**
 * Text inputs as other people hand them over (issue 11): CRLF copies, damaged gzip, devices and pipes
 * that never end, files larger than a string can hold. Each is read as its LF original or refused in
 * one line that names the file and the offset, before memory fills.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ROOT, errorOf, sample, sampleText } from './helpers.js';
import { MAX_WHOLE_FILE, readText } from '../src/util/read-file.js';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { parseMeminfo } from '../src/check/proc.js';
import { parseVmallocinfo } from '../src/check/vmallocinfo.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'sysak-hostile-text-'));
const crlf = (s: string) => s.replace(/\n/g, '\r\n');

function sysak(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'memleak', '-q', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('CRLF text (a copy through Windows or a mail client) reads as its LF original', () => {
  it('kallsyms: the same symbols, not "slab_caches not found"', () => {
    const lf = sampleText('demo-kmalloc64/guest/kallsyms.txt.gz').split('\n').slice(0, 20000).join('\n') + '\n';
    const f = join(dir, 'kallsyms.crlf');
    writeFileSync(f, crlf(lf));
    expect(readText(f)).toBe(lf);
    const k = Kallsyms.parse(readText(f), f);
    expect(k.addressOf('_stext')).toBe(Kallsyms.parse(lf, 'lf').addressOf('_stext'));
  });

  it('crash rd -64 and kmem -S with CRLF: the analysis names the leak as with LF', () => {
    const rd = join(dir, 'rd64.crlf');
    const kmem = join(dir, 'kmem.crlf');
    writeFileSync(rd, crlf(sampleText('demo-kmalloc64/crash/rd64_pages.txt.gz')));
    writeFileSync(kmem, crlf(readFileSync(sample('demo-kmalloc64/crash/kmem_S_kmalloc-64.txt'), 'utf8')));
    const r = sysak('--rd', rd, '--kmem', kmem, '--kallsyms', sample('demo-kmalloc64/guest/kallsyms.txt.gz'), '--trace', sample('demo-kmalloc64/guest/trace.txt.gz'), '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('demo_conn_add');
  });
});

describe('damaged or endless text inputs: one line naming the file, exit 4', () => {
  const oneLine = (r: { code: number | null; out: string; err: string }, msg: RegExp) => {
    expect(r.code).toBe(4);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.err).toMatch(msg);
  };
  const vmcore = sample('demo-kmalloc64/vmcore.extract.gz');

  it('--trace /dev/zero: refused at its first NUL, not read until memory is gone', () => {
    oneLine(sysak('--vmcore', vmcore, '--trace', '/dev/zero'), /^sysak memleak: \/dev\/zero at offset 0 \(0x0\): binary file where text was expected/);
  });

  it('a binary file where text belongs says what it is and what to give instead', () => {
    // trace-cmd's trace.dat and perf.data headers (trace-cmd.dat(5), perf's PERF_MAGIC); a vmcore and BTF from samples.
    const dat = join(dir, 'trace.dat');
    writeFileSync(dat, Buffer.from('\x17\x08\x44tracing6\0\x00\x10\x00\x00', 'latin1'));
    const perf = join(dir, 'perf.data');
    writeFileSync(perf, Buffer.from('PERFILE2\x68\0\0\0\0\0\0\0', 'latin1'));
    oneLine(sysak('--vmcore', vmcore, '--trace', dat), /trace\.dat at offset 11 \(0xb\): binary file where text was expected \(a NUL byte; this is trace-cmd's binary trace\.dat: give the text of `trace-cmd report`\)$/m);
    expect(errorOf(() => readText(perf)).message).toBe('binary file where text was expected (a NUL byte; this is perf.data: give the text of `perf script`)');
    expect(errorOf(() => readText(vmcore)).message).toMatch(/an ELF file: give a vmcore or an extract with --vmcore\)$/);
  });

  it('a gzip trace cut short, and one with a damaged trailer, say which', () => {
    const gz = readFileSync(sample('demo-kmalloc64/guest/trace.txt.gz'));
    const cut = join(dir, 'cut.txt.gz');
    writeFileSync(cut, gz.subarray(0, gz.length >> 1));
    oneLine(sysak('--vmcore', vmcore, '--trace', cut), /cut\.txt\.gz: corrupt gzip data: it ends early \(truncated\)$/m);
    const trailer = join(dir, 'trailer.txt.gz');
    const t = Buffer.from(gz);
    t.writeUInt32LE(0xdeadbeef, t.length - 8);
    writeFileSync(trailer, t);
    oneLine(sysak('--vmcore', vmcore, '--trace', trailer), /trailer\.txt\.gz: corrupt gzip data: incorrect data check/);
  });

  it('a file larger than a string can hold is refused by its size, before it is read', () => {
    const big = join(dir, 'big-trace.txt');
    writeFileSync(big, '');
    truncateSync(big, MAX_WHOLE_FILE + 4096);
    const e = errorOf(() => readText(big));
    expect(e.code).toBe('E_FORMAT');
    expect(e.where()).toBe(`${big} at offset ${MAX_WHOLE_FILE} (0x${MAX_WHOLE_FILE.toString(16)}): ${MAX_WHOLE_FILE + 4096} bytes: larger than the 512 MiB an input read whole may hold (cut a trace to the leak's window)`);
  });

  it('gzip data that inflates past that size is refused as it inflates', () => {
    // Nine gzip members of 64 MiB of text each (gunzip reads them as one stream): 576 MiB inflated.
    const member = gzipSync(Buffer.alloc(64 << 20, 'a'));
    const bomb = join(dir, 'bomb.txt.gz');
    writeFileSync(bomb, Buffer.concat(Array.from({ length: 9 }, () => member)));
    const e = errorOf(() => readText(bomb));
    expect(e.where()).toMatch(/bomb\.txt\.gz at offset \d+ \(0x[0-9a-f]+\): gzip data that inflates to more than \d+ bytes: larger than the 512 MiB/);
  });
});

describe('/proc/meminfo from another tool or cut: refused at its line, never a verdict from zeros', () => {
  const MEMINFO = readFileSync(sample('demo-kmalloc64/guest/meminfo.after'), 'utf8');

  it('a size without its kB unit, a number past 15 digits, a missing MemFree', () => {
    expect(errorOf(() => parseMeminfo(MEMINFO.replace('MemFree:          662864 kB', 'MemFree:          662864'), 'meminfo')).where())
      .toBe('meminfo:2: MemFree has no kB unit: /proc/meminfo gives every size in kB (another tool\'s output, or an edited copy?)');
    expect(errorOf(() => parseMeminfo(MEMINFO.replace('662864 kB', '9999999999999999999999 kB'), 'meminfo')).where())
      .toBe('meminfo:2: not a /proc/meminfo line: "MemFree:          9999999999999999999999 kB"');
    expect(errorOf(() => parseMeminfo(MEMINFO.replace(/^MemFree:.*\n/m, ''), 'meminfo')).where())
      .toBe('meminfo:53: no MemFree line: not a whole /proc/meminfo (cut, or from a kernel before 2.6.19)');
    // HugePages_ counts have no unit in the kernel's own file.
    expect(parseMeminfo(MEMINFO, 'meminfo').get('HugePages_Total')).toBe(0);
  });

  it('--from with such an after snapshot: exit 4 naming it, not "conclusion: no memleak"', () => {
    const rec = join(dir, 'rec');
    cpSync(sample('demo-kmalloc64'), rec, { recursive: true });
    const f = join(rec, 'guest/meminfo.after');
    writeFileSync(f, MEMINFO.replace(/ kB$/gm, ''));
    const r = sysak('--from', rec);
    expect(r.code).toBe(4);
    expect(r.out).toBe('');
    expect(r.err).toBe(`sysak memleak: ${f}:1: MemTotal has no kB unit: /proc/meminfo gives every size in kB (another tool's output, or an edited copy?)\n`);
  });
});

describe('recording directories laid out by hand', () => {
  it('a file called crash where the folder of crash text belongs: the rest of the recording is read', () => {
    const rec = join(dir, 'crash-file');
    cpSync(sample('demo-kmalloc64'), rec, { recursive: true });
    rmSync(join(rec, 'crash'), { recursive: true });
    writeFileSync(join(rec, 'crash'), 'notes\n');
    // Before: "internal error: ENOTDIR: not a directory, scandir", exit 70.
    const r = sysak('--from', rec, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('demo_conn_add');
  });
});

describe('/proc/vmallocinfo numbers are checked on their line', () => {
  it('pages=99999999999999999999 in an area of 8192 bytes, a size of 20 digits', () => {
    const text = gunzipSync(readFileSync(sample('vmleak-vmalloc/guest/vmallocinfo.after.gz'))).toString('utf8');
    const row = text.split('\n')[4];
    expect(row).toMatch(/ 8192 .* pages=1 /);
    // Before: read, and the report said 930468750000047652864.0 MiB of pages.
    expect(errorOf(() => parseVmallocinfo(text.replace(row, row.replace('pages=1 ', 'pages=99999999999999999999 ')), 'vmallocinfo')).where())
      .toBe('vmallocinfo:5: pages=99999999999999999999 do not fit in an area of 8192 bytes: damaged line');
    expect(errorOf(() => parseVmallocinfo(text.replace(row, row.replace(' 8192 ', ' 81920000000000000000 ')), 'vmallocinfo')).where())
      .toBe('vmallocinfo:5: vmallocinfo size 81920000000000000000 is not a size');
  });
});
