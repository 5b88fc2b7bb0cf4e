import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseMemory } from '../src/util/memory.js';
import { parseCrashRd } from '../src/input/crash-rd.js';
import { parseCrashKmem } from '../src/input/crash-kmem.js';
import { Kallsyms } from '../src/kernel/kallsyms.js';
import { resolveGeometry, resolveSymbolicWords, slabSetFromMemory } from '../src/slab/crash-text.js';
import { scanSlabs, type ScanResult } from '../src/scan/scanner.js';
import { clusterAddress } from '../src/scan/clusters.js';
import { defaultRequest, requestFromRecording } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { spawnSync } from 'node:child_process';
import { ROOT, expected, sample, sampleText } from './helpers.js';

const COOKIE = 0x6d656d64656d6f31n;

function load(rec: string, rd = 'rd64_pages.txt.gz', withKallsyms = false) {
  const mem = new SparseMemory('rd');
  parseCrashRd(sampleText(`${rec}/crash/${rd}`), rd, mem);
  const kmem = parseCrashKmem(sampleText(`${rec}/crash/kmem_S_kmalloc-64.txt`), 'kmem');
  if (withKallsyms) resolveSymbolicWords(mem, Kallsyms.parse(sampleText(`${rec}/guest/kallsyms.txt.gz`)));
  return { mem, kmem, set: slabSetFromMemory(mem, resolveGeometry({ cache: 'kmalloc-64' }, kmem, null), kmem) };
}

function firstWord(mem: SparseMemory, r: ScanResult, i: number): bigint {
  const c = r.clusters[i];
  const b = mem.read(clusterAddress(c), 8)!;
  return new DataView(b.buffer).getBigUint64(0, true);
}

function summary(r: ScanResult) {
  return r.clusters.map((c) => [c.count, c.repHi, c.repLo, c.similarity.toFixed(6), c.members.map((m) => m.key)]);
}

describe('slab scan on demo-kmalloc64 (200 real slab pages)', () => {
  const exp = expected('demo-kmalloc64');

  it('the top cluster is struct demo_conn and holds >= 95% of the leaked objects in the pages', async () => {
    const { mem, set } = load('demo-kmalloc64');
    const r = await scanSlabs(set, { workers: 0 });
    expect(firstWord(mem, r, 0)).toBe(COOKIE);
    expect(r.clusters[0].count).toBeGreaterThanOrEqual(Math.ceil(0.95 * exp.leakedInDumpedPages));
    // Not more than there are: nothing else is pulled in.
    expect(r.clusters[0].count).toBeLessThanOrEqual(exp.leakedInDumpedPages);
    // The long-lived table (3000 demo_entry, not a leak) is its own cluster, not merged into the leak.
    expect(r.clusters[1].count).toBeGreaterThanOrEqual(Math.ceil(0.95 * exp.tableObjectsInDumpedPages));
    expect(r.stats.objectsFree).toBeGreaterThan(0); // kmem -S free markers are honoured
  });

  it('gives the same clusters in the main thread, on 1 worker and on 2 workers', async () => {
    const { set } = load('demo-kmalloc64');
    const small = { chunkBytes: 64 << 10 }; // many chunks, so the merge order really varies
    const r0 = await scanSlabs(set, { workers: 0, ...small });
    const r1 = await scanSlabs(set, { workers: 1, ...small });
    const r2 = await scanSlabs(set, { workers: 2, ...small });
    expect(summary(r1)).toEqual(summary(r0));
    expect(summary(r2)).toEqual(summary(r0));
    expect(r2.stats.memoryDigest).toBe(r0.stats.memoryDigest);
    expect(r0.stats.memoryDigest).toMatch(/^[0-9a-f]{16}$/);
    // One changed word changes the digest of the memory read.
    const { mem, set: set2 } = load('demo-kmalloc64');
    mem.writeWord(set2.slabs[7] + 0x20n, 0x1234n);
    expect((await scanSlabs(set2, { workers: 0 })).stats.memoryDigest).not.toBe(r0.stats.memoryDigest);
  });

  it('finds the same shape from rd -S text (symbols and [kmalloc-64] words)', async () => {
    const { mem, set } = load('demo-kmalloc64', 'rdS_pages.txt.gz', true);
    const r = await scanSlabs(set, { workers: 0 });
    expect(firstWord(mem, r, 0)).toBe(COOKIE);
    expect(r.clusters[0].count).toBeGreaterThanOrEqual(Math.ceil(0.95 * exp.leakedInDumpedPages));
  });

  it('finds the same shape in a raw dump made of the same pages', async () => {
    const { mem } = load('demo-kmalloc64');
    // The longest run of contiguous dumped pages, written out as raw bytes.
    const pages = mem.pageAddresses();
    let best = [pages[0]];
    let run = [pages[0]];
    for (let i = 1; i < pages.length; i++) {
      run = pages[i] === pages[i - 1] + 4096n ? [...run, pages[i]] : [pages[i]];
      if (run.length > best.length) best = run;
    }
    expect(best.length).toBeGreaterThanOrEqual(8);
    const bytes = new Uint8Array(best.length * 4096);
    best.forEach((p, i) => bytes.set(mem.read(p, 4096)!, i * 4096));
    const dir = mkdtempSync(join(tmpdir(), 'sysak-raw-'));
    const file = join(dir, 'pages.bin');
    writeFileSync(file, bytes);
    const fromRd = new SparseMemory('sub');
    for (const p of best) fromRd.write(p, mem.read(p, 4096)!);
    const geo = resolveGeometry({ objectSize: 64, slabSize: 4096 }, null, null);
    const a = await scanSlabs(slabSetFromMemory(fromRd, geo, null), { workers: 0 });
    const req = { ...defaultRequest(), raw: { file, base: best[0] }, geometry: { objectSize: 64 }, scan: { workers: 0 } };
    const rep = await analyze(req);
    expect(rep.clusters[0].count).toBe(a.clusters[0].count);
    expect(rep.clusters[0].object).toBe('0x' + clusterAddress(a.clusters[0]).toString(16));
    // The raw file is streamed (ring of shared buffers): same clusters, same bytes (digest), and the
    // representative's words are still there, copied out of the ring.
    expect(rep.source.memory).toMatch(/streamed/);
    expect(rep.scan.memoryDigest).toBe(a.stats.memoryDigest);
    expect(rep.clusters.map((c) => [c.count, c.object])).toEqual(a.clusters.slice(0, 5).map((c) => [c.count, '0x' + clusterAddress(c).toString(16)]));
    const w0 = new DataView(mem.read(clusterAddress(a.clusters[0]), 8)!.buffer).getBigUint64(0, true);
    expect(rep.clusters[0].words?.length).toBe(8);
    expect(rep.clusters[0].words?.[0].value).toBe('0x' + w0.toString(16).padStart(16, '0'));
    const two = await analyze({ ...req, scan: { workers: 2 } });
    expect(two.clusters).toEqual(rep.clusters);
    // stdin (`--raw -`) gives the same report.
    const out = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), 'memleak', '--raw', '-', '--base', best[0].toString(16), '--object-size', '64', '--json'], { input: bytes, encoding: 'utf8' });
    expect(out.stderr).toBe('');
    const fromStdin = JSON.parse(out.stdout);
    expect(fromStdin.clusters.map((c: { count: number; object: string }) => [c.count, c.object])).toEqual(rep.clusters.map((c) => [c.count, c.object]));
    expect(fromStdin.scan.memoryDigest).toBe(rep.scan.memoryDigest);
  });

  it('symbolizes the representative: cookie, demo_conn_ops [memdemo], list poison, varying counter', async () => {
    const rep = await analyze({ ...requestFromRecording(sample('demo-kmalloc64')), trace: null, scan: { workers: 0 } });
    const words = rep.clusters[0].words!;
    expect(words[0]).toMatchObject({ kind: 'ascii', value: '0x6d656d64656d6f31' });
    expect(words[1]).toMatchObject({ kind: 'symbol', text: 'demo_conn_ops [memdemo]' });
    expect(words[2].text).toMatch(/LIST_POISON1|empty list_head/);
    expect(words[4].varies).toBe(true); // seq
    expect(rep.clusters[0].varyingOffsets).toEqual([0x20]);
    expect(rep.verdict).toBeNull();
  });
});

describe('slab scan on sanity-none (everything freed)', () => {
  it('counts no freed demo_conn as allocated, although stale ones remain in free slots', async () => {
    const { mem, kmem, set } = load('sanity-none');
    let staleFree = 0;
    for (const [addr, allocated] of kmem.objects) {
      const b = mem.read(addr, 8);
      if (b && !allocated && new DataView(b.buffer).getBigUint64(0, true) === COOKIE) staleFree++;
    }
    expect(staleFree).toBeGreaterThan(0); // the trap is real
    const r = await scanSlabs(set, { workers: 0 });
    for (let i = 0; i < r.clusters.length; i++) expect(firstWord(mem, r, i)).not.toBe(COOKIE);
    expect(expected('sanity-none').leakedInDumpedPages).toBe(0);
  });
});

describe('the fused hot loop equals the reference tokenize -> template -> key path', () => {
  it('on real slab pages and on words at every class boundary', async () => {
    const { scanChunk, referenceKey } = await import('../src/scan/scan-chunk.js');
    const { HeavyLearner } = await import('../src/scan/heavy.js');
    const { tokenSpaceOf } = await import('../src/scan/tokens.js');
    const { estimateAddressSpace } = await import('../src/kernel/address-space.js');
    const { set } = load('demo-kmalloc64');
    const stride = 64;
    const nSlabs = 64;
    const buffer = new SharedArrayBuffer(nSlabs * 4096 * 2);
    const bytes = new Uint8Array(buffer);
    const slabAddrs = new Uint32Array(4 * nSlabs);
    // Half real pages, half adversarial words: boundaries of every range the hot loop compares.
    for (let i = 0; i < nSlabs; i++) {
      bytes.set(set.memory.read(set.slabs[i], 4096)!, i * 4096);
      slabAddrs[2 * i] = Number(set.slabs[i] & 0xffffffffn);
      slabAddrs[2 * i + 1] = Number(set.slabs[i] >> 32n);
    }
    const edges = [0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0xdead000000000100n, 0xdead000000000122n, 0xdead000000100100n,
      0xffff7fffffffffffn, 0xffff800000000000n, 0xffffffff7fffffffn, 0xffffffff80000000n, 0xffffffffffffffffn, 0x0bad5aab00000000n];
    const dv = new DataView(buffer);
    let rnd = 7;
    for (let i = nSlabs; i < 2 * nSlabs; i++) {
      const base = set.slabs[i % nSlabs] + 0x100000000000n;
      slabAddrs[2 * i] = Number(base & 0xffffffffn);
      slabAddrs[2 * i + 1] = Number(base >> 32n);
      for (let w = 0; w < 512; w++) {
        rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0;
        const pick = rnd % (edges.length + 3);
        const v = pick < edges.length ? edges[pick] : pick === edges.length ? base + BigInt((w * 8) & ~63) + 8n : base + BigInt(rnd % 4096);
        dv.setBigUint64(i * 4096 + w * 8, v, true);
      }
    }
    const words = new Uint32Array(buffer);
    const space = tokenSpaceOf(estimateAddressSpace(set.slabs));
    const learner = new HeavyLearner(16, stride, space);
    for (let o = 0; o < 2 * nSlabs * 64; o += 3) learner.add(words, o * 16, slabAddrs[2 * (o >> 6)] + (o & 63) * 64, slabAddrs[2 * (o >> 6) + 1]);
    const heavy = learner.finish();
    const r = scanChunk({ buffer, byteOffset: 0, stride, objsPerSlab: 64, slabAddrs, state: null, heavy, space, maxTemplates: 1 << 16 });
    expect(r.objects).toBe(2 * nSlabs * 64);
    expect(r.templates.length).toBeGreaterThan(100);
    const want = new Map<number, number>();
    for (let o = 0; o < 2 * nSlabs * 64; o++) {
      const s = o >> 6;
      const lo = (slabAddrs[2 * s] + (o & 63) * 64) >>> 0;
      const key = referenceKey(words, o * 16, 16, lo, slabAddrs[2 * s + 1], stride, space, heavy);
      want.set(key, (want.get(key) ?? 0) + 1);
    }
    // Every template holds exactly the objects the reference path gives its key.
    expect(new Map(r.templates.map((t) => [t.key, t.count]))).toEqual(want);
  });
});
