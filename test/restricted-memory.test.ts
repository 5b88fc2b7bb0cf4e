/**
 * Under `ulimit -v 4194304` (4 GiB of address space, as production hosts often give diagnostic tools)
 * WebAssembly cannot reserve its guard region: every analysis must still work (issue 11, class 6).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import xxhash from 'xxhash-wasm';
import { xxh64Js } from '../src/util/hash64.js';
import { ROOT, sample } from './helpers.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');

function limited(args: string[]) {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const r = spawnSync('bash', ['-c', `ulimit -v 4194304 && exec '${process.execPath}' '${BIN}' memleak ${quoted}`], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('restricted address space (ulimit -v 4 GiB)', () => {
  it('the JS XXH64 equals xxhash-wasm on every length class', async () => {
    const w = await xxhash();
    for (const n of [0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 64, 100, 1000, 4099]) {
      const b = new Uint8Array(randomBytes(n));
      expect(xxh64Js(b), `length ${n}`).toBe(w.h64Raw(b));
    }
  });

  for (const [name, args, verdict] of [
    ['vmcore extract + trace (2 workers)', ['--from', sample('demo-kmalloc64'), '--workers', '2', '--json'], /demo_conn_add/],
    ['crash text, streamed scan in the main thread', ['--rd', sample('demo-kmalloc64/crash/rd64_pages.txt.gz'), '--kmem', sample('demo-kmalloc64/crash/kmem_S_kmalloc-64.txt'), '--workers', '0', '--json'], null],
    ['vmalloc snapshots', ['--from', sample('vmleak-vmalloc'), '--json'], /vmleak_buf_add/],
  ] as const) {
    it(`${name}: same result as without the limit`, () => {
      const r = limited([...args]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out);
      if (verdict) expect(j.verdict.function).toMatch(verdict);
      else expect(j.clusters.length).toBeGreaterThan(0);
    });
  }
});
