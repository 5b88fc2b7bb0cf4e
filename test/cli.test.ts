import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sample } from './helpers.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');

function sysak(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'memleak', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'sysak-cli-'));
function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

describe('sysak memleak CLI', () => {
  it('--from a recording prints the verdict in English', () => {
    const r = sysak('--from', sample('demo-kmalloc64'), '--workers', '2');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Verdict: slab leak in kmalloc-64 by demo_conn_add\+0x24\/0x140 \[memdemo\]$/m);
    expect(r.out).toMatch(/demo_conn_ops \[memdemo\]/);
    expect(r.err).toBe('');
  });

  it('--json follows the documented schema', () => {
    const r = sysak('--from', sample('demo-kmalloc64'), '--json');
    const j = JSON.parse(r.out);
    expect(j.schema).toBe('sysak-memleak/1');
    expect(j.cache).toMatchObject({ name: 'kmalloc-64', objectSize: 64, allocated: 158800 });
    expect(j.clusters[0].object).toMatch(/^0x[0-9a-f]+$/);
    expect(j.clusters[0]).toHaveProperty('count');
    expect(j.clusters[0]).toHaveProperty('similarity');
    expect(j.verdict).toMatchObject({ type: 'slab', cache: 'kmalloc-64', function: 'demo_conn_add+0x24/0x140 [memdemo]' });
    expect(j.callSites[0]).toMatchObject({ function: 'demo_conn_add+0x24/0x140 [memdemo]', unfreed: 401, marked: 401 });
  });

  it('--format sysak reproduces the original report layout', () => {
    const r = sysak('--from', sample('demo-kmalloc64'), '--format', 'sysak');
    expect(r.out).toMatch(/^未释放内存详细列表:$/m);
    expect(r.out).toMatch(/^kworker\/\d+:\d+:\d+  demo_conn_add\+0x24\/0x140 \[memdemo\]  ptr=0xffff[0-9a-f]+ mark 1 delta = [\d.]+$/m);
    expect(r.out).toMatch(/^次数    标记次数       函数\n401      401            demo_conn_add\+0x24\/0x140 \[memdemo\]$/m);
    expect(r.out).toMatch(/^疑似泄漏函数: demo_conn_add\+0x24\/0x140 \[memdemo\]$/m);
  });

  it('explicit crash-text flags give the same verdict as --from', () => {
    const r = sysak(
      '--rd', sample('demo-kmalloc64/crash/rdS_pages.txt.gz'), '--kmem', sample('demo-kmalloc64/crash/kmem_S_kmalloc-64.txt'),
      '--kallsyms', sample('demo-kmalloc64/guest/kallsyms.txt.gz'), '--trace', sample('demo-kmalloc64/guest/trace.txt.gz'), '--json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).verdict.function).toBe('demo_conn_add+0x24/0x140 [memdemo]');
  });

  it('sanity-none: no verdict, with the reason', () => {
    const r = sysak('--from', sample('sanity-none'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Verdict: none \(/m);
  });

  const bad: [string, () => string[], RegExp, number][] = [
    ['a truncated rd line', () => ['--rd', file('t.txt', 'ffff8eadc3d02000:  6d656d64656d6f31 ffffffffc0614b60   1omedmem`Ka.....\nffff8eadc3d02010:  dead0000\n'), '--object-size', '64'], /t\.txt:2: truncated rd word/, 4],
    ['a file of no known format', () => ['--rd', file('x.txt', 'hello\nworld\n'), '--object-size', '64'], /x\.txt:1: not a format sysak memleak reads/, 4],
    ['a missing file', () => ['--rd', join(tmp, 'nope.txt'), '--object-size', '64'], /nope\.txt: cannot read: no such file/, 3],
    ['an object size that does not divide the slab', () => ['--rd', sample('demo-kmalloc64/crash/rd64_pages.txt.gz'), '--object-size', '48'], /does not divide the slab size 4096/, 4],
    ['a restricted kallsyms', () => ['--from', sample('demo-kmalloc64'), '--kallsyms', file('k.txt', '0000000000000000 T _stext\n0000000000000000 t f\t[m]\n')], /k\.txt: .*kptr_restrict/, 4],
    ['an empty kallsyms', () => ['--from', sample('demo-kmalloc64'), '--kallsyms', file('e.txt', '')], /e\.txt: kallsyms file is empty/, 4],
    ['--raw without --base', () => ['--raw', file('r.bin', 'x'), '--object-size', '64'], /--raw needs --base/, 2],
  ];
  for (const [what, args, msg, code] of bad) {
    it(`${what}: one line on stderr, exit ${code}, nothing on stdout`, () => {
      const r = sysak(...args());
      expect(r.code).toBe(code);
      expect(r.out).toBe('');
      expect(r.err).toMatch(msg);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).not.toMatch(/\n\s+at /);
    });
  }

  it('rejects a bad flag value through commander with usage, not a stack trace', () => {
    const r = sysak('--threshold', '3', '--from', sample('demo-kmalloc64'));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--threshold must be a number in \(0, 1\]/);
  });
});

describe('a reader that closes stdout early', () => {
  it('`--json | head -c 0`: no EPIPE stack trace, the exit code stays the analysis\'s', () => {
    // the reader exits at once: the report's write meets a closed pipe; sysak's own status goes to stderr
    const cmd = `("${process.execPath}" "${BIN}" memleak --from "${sample('demo-kmalloc64')}" --json; echo "status=$?" >&2) | head -c 0`;
    const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/EPIPE|node:events|at .*\.js:\d+/);
    expect(r.stderr.trim().split('\n').pop()).toBe('status=0');
  });
});
