/**
 * The command line as people mistype it (issue 11, class 5): every bad option or value is one line on
 * stderr and exit 2, never the whole help; an empty path (an unset shell variable) is a usage error and
 * never starts live mode; every number option is range-checked.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sample } from './helpers.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');

function sysak(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function usageError(r: { code: number | null; out: string; err: string }, msg: RegExp) {
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).toMatch(/^sysak memleak: /);
  expect(r.err).toMatch(msg);
  expect(r.err).not.toMatch(/Options:|Usage:/);
}

describe('command line errors: one line, exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown option', ['memleak', '--foo'], /unknown option '--foo' \(see sysak memleak --help\)/],
    ['an unknown subcommand', ['memleak', 'extrct'], /too many arguments for 'memleak'/],
    ['an unknown command', ['memlaek'], /unknown command 'memlaek'/],
    ['a missing value', ['memleak', '--trace'], /option '--trace <file>' argument missing/],
    ['a bad threshold', ['memleak', '--threshold', '3', '--from', sample('demo-kmalloc64')], /--threshold must be a number in \(0, 1\]/],
    ['--slab-size 1 TiB', ['memleak', '--slab-size', '1099511627776', '--rd', 'x'], /--slab-size must be a size from 4096 to 4194304/],
    ['--slab-size 2 GiB', ['memleak', '--slab-size', '2147483648', '--rd', 'x'], /--slab-size must be a size from 4096/],
    ['--slab-size not a page multiple', ['memleak', '--slab-size', '6000', '--rd', 'x'], /a multiple of 4096/],
    ['--object-size 0', ['memleak', '--object-size', '0', '--rd', 'x'], /--object-size must be a size from 8/],
    ['--object-size huge', ['memleak', '--object-size', '99999999999', '--rd', 'x'], /--object-size must be a size from 8 to 4194304/],
    ['--objects-per-slab -1', ['memleak', '--objects-per-slab', '-1', '--rd', 'x'], /--objects-per-slab must be an integer from 1/],
    ['--top 1e3', ['memleak', '--top', '1e3', '--rd', 'x'], /--top must be an integer from 1 to 1000/],
    ['--workers 0x2', ['memleak', '--workers', '0x2', '--rd', 'x'], /--workers must be an integer from 0 to 64/],
    ['--free-only 100', ['memleak', '--free-only', '100', '--rd', 'x'], /--free-only must be an integer from 0 to 99/],
    ['--duration 0', ['memleak', '--duration', '0'], /--duration must be an integer from 1 to 86400/],
    ['--buffer-kb 1', ['memleak', '--buffer-kb', '1'], /--buffer-kb must be an integer from 64/],
    ['--type bogus', ['memleak', '--type', 'bogus', '--rd', 'x'], /Allowed choices are auto, slab, page, vmalloc/],
    ['extract without -o', ['memleak', 'extract', '--vmcore', 'x'], /required option '-o, --output <file>' not specified/],
  ];
  for (const [what, args, msg] of cases) it(what, () => usageError(sysak(...args), msg));
});

describe('empty paths are usage errors, never "no input" (which would start a live trace)', () => {
  for (const opt of ['--vmcore', '--from', '--rd', '--kmem', '--kallsyms', '--slabinfo', '--raw', '--trace', '--btf', '--save']) {
    it(`${opt} ""`, () => usageError(sysak('memleak', opt, ''), new RegExp(`${opt} needs a file name, not an empty string \\(an unset shell variable\\?\\)`)));
  }
  it('extract --vmcore "" and -o ""', () => {
    usageError(sysak('memleak', 'extract', '--vmcore', '', '-o', 'x.gz'), /--vmcore needs a file name/);
    usageError(sysak('memleak', 'extract', '--vmcore', 'x', '-o', ''), /--output needs a file name/);
  });
  it('-n "" is refused', () => usageError(sysak('memleak', '--from', sample('demo-kmalloc64'), '-n', ''), /--cache must not be empty/));
  it('an offline-only flag without an input does not start live mode', () => {
    usageError(sysak('memleak', '--trace', sample('demo-kmalloc64/guest/trace.txt.gz')), /--trace is for offline analysis/);
  });
});

describe('--from with empty snapshot files: refused like an empty meminfo', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sysak-snap-'));
  for (const f of ['meminfo.after', 'vmallocinfo.before', 'slabinfo.after']) {
    it(`an empty guest/${f}`, async () => {
      const { cpSync } = await import('node:fs');
      const dir = join(tmp, f);
      cpSync(sample('vmleak-vmalloc'), dir, { recursive: true });
      const { readdirSync, rmSync } = await import('node:fs');
      for (const x of readdirSync(join(dir, 'guest'))) if (x.startsWith(f)) rmSync(join(dir, 'guest', x));
      writeFileSync(join(dir, 'guest', f), '');
      const r = sysak('memleak', '--from', dir);
      expect(r.code).toBe(4);
      expect(r.out).toBe('');
      expect(r.err).toMatch(new RegExp(`guest/${f.replace('.', '\\.')}: the snapshot file is empty`));
    });
  }
});

describe('help and version stay successes', () => {
  it('--help prints the help, exit 0', () => {
    const r = sysak('memleak', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Usage: sysak memleak/);
  });
});
