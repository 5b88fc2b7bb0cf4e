import { afterAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseMemory } from '../src/util/memory.js';
import { parseCrashRd } from '../src/input/crash-rd.js';
import { estimateAddressSpace } from '../src/kernel/address-space.js';
import { fdSource, LEARN_BYTES, scanStream, type StreamSource } from '../src/scan/stream-scan.js';
import { MemleakError } from '../src/errors.js';
import { DEFAULT_SCAN } from '../src/scan/scanner.js';
import { Phases } from '../src/phases.js';
import { ROOT, sampleText } from './helpers.js';

// A raw dump larger than what the stream learns from (so both the learned head and the chunks after it
// are scanned), made of the demo recording's real kmalloc-64 pages, with a partial slab at the end.
const dir = mkdtempSync(join(tmpdir(), 'sysak-rawfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const BASE = 0xffff8eadc1048000n;
const file = join(dir, 'pages.bin');
const pages = (() => {
  const mem = new SparseMemory('rd');
  parseCrashRd(sampleText('demo-kmalloc64/crash/rd64_pages.txt.gz'), 'rd', mem);
  const addrs = mem.pageAddresses();
  const bytes = new Uint8Array(addrs.length * 4096);
  addrs.forEach((p, i) => bytes.set(mem.read(p, 4096)!, i * 4096));
  return bytes;
})();
const size = (() => {
  const fd = openSync(file, 'w');
  let n = 0;
  while (n < LEARN_BYTES + (6 << 20)) n += writeSync(fd, pages);
  n += writeSync(fd, pages.subarray(0, 1000));
  closeSync(fd);
  return n;
})();

/** The same file as a pipe would give it: read in order, no size, no offsets. */
function pipeLike(fd: number): StreamSource {
  return { description: 'pipe', name: 'pipe', read: (into) => {
    let done = 0;
    while (done < into.length) {
      const n = readSync(fd, into, done, into.length - done, null);
      if (n === 0) break;
      done += n;
    }
    return done;
  } };
}

async function scan(kind: 'file' | 'pipe', stride: number, workers: number | undefined, src?: (fd: number) => StreamSource) {
  const fd = openSync(file, 'r');
  try {
    const objsPerSlab = Math.floor(4096 / stride);
    const s = src ? src(fd) : kind === 'file' ? fdSource(fd, file) : pipeLike(fd);
    expect(s.file !== undefined).toBe(kind === 'file');
    const r = await scanStream(s, { stride, objsPerSlab, slabSize: 4096, base: BASE }, estimateAddressSpace([BASE]), workers === undefined ? {} : { workers });
    if (workers === undefined) return r.scan.stats.workers;
    return { digest: r.scan.stats.memoryDigest, objects: r.scan.stats.objectsScanned, slabs: r.slabs, trailing: r.trailingBytes, bytes: r.bytes,
      clusters: r.scan.clusters.map((c) => [c.count, c.repHi, c.repLo, c.members.map((m) => [m.key, m.count])]) };
  } finally {
    closeSync(fd);
  }
}

describe('--raw FILE: each chunk read by offset on the thread that scans it', () => {
  for (const stride of [64, 96]) {
    it(`gives what the sequential stream gives, for 0, 1 and 2 workers (object size ${stride}${4096 % stride ? ', slab padding' : ''})`, async () => {
      const want = await scan('pipe', stride, 0);
      expect(want.slabs).toBe(Math.floor(size / 4096));
      expect(want.trailing).toBe(1000);
      expect(want.objects).toBe(want.slabs * Math.floor(4096 / stride));
      for (const workers of [0, 1, 2]) expect(await scan('file', stride, workers)).toEqual(want);
    });
  }

  it('shares a file between the main thread and the workers, which take chunks from one counter', async () => {
    const fd = openSync(file, 'r');
    try {
      const phases = new Phases();
      await scanStream(fdSource(fd, file), { stride: 64, objsPerSlab: 64, slabSize: 4096, base: BASE }, estimateAddressSpace([BASE]), { workers: 1, phases });
      const chunks = Math.ceil(size / (4 << 20));
      const note = phases.list.find((p) => p.phase === 'scan')?.note ?? '';
      const m = /^(\d+) of (\d+) chunks scanned on the main thread, beside 1 worker$/.exec(note);
      expect(m, note).not.toBeNull();
      expect(Number(m![2])).toBe(chunks);
      // This thread starts at once while the worker boots, so it always takes a share.
      expect(Number(m![1])).toBeGreaterThan(0);
    } finally {
      closeSync(fd);
    }
  });

  it('by default leaves a core to the main thread, which scans a file too and reads a pipe (in this thread alone when small)', async () => {
    expect(size).toBeGreaterThanOrEqual(DEFAULT_SCAN.poolMinBytes);
    expect(DEFAULT_SCAN.workers).toBe(Math.max(0, Math.min(availableParallelism(), 8) - 1));
    expect(await scan('file', 64, undefined)).toBe(DEFAULT_SCAN.workers);
    expect(await scan('pipe', 64, undefined)).toBe(DEFAULT_SCAN.workers);
  });

  it('a directory, a file shorter than a slab, a missing file: one line naming it (not EISDIR, "the input" or ENOENT)', () => {
    const cut = join(dir, 'cut.bin');
    writeFileSync(cut, pages.subarray(0, 1000));
    const run = (raw: string) => spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), 'memleak', '-q', '--raw', raw, '--base', '0x' + BASE.toString(16), '--object-size', '64'], { encoding: 'utf8' });
    for (const [raw, code, msg] of [
      [dir, 3, `${dir}: cannot read raw dump: is a directory`],
      [cut, 5, `${cut} at offset 1000 (0x3e8): raw dump of 1000 bytes holds no whole 4096-byte slab`],
      [join(dir, 'none.bin'), 3, `${join(dir, 'none.bin')}: cannot open raw dump: no such file`],
    ] as const) {
      const r = run(raw);
      expect(r.status).toBe(code);
      expect(r.stderr).toBe(`sysak memleak: ${msg}\n`);
    }
  });

  it('names the offset where a file shrank under the scan, on the main thread and in a worker', async () => {
    for (const workers of [0, 1]) {
      const shrunk = (fd: number): StreamSource => ({ ...fdSource(fd, file), file: { fd, path: file, size: size + (4 << 20) } });
      const e = await scan('file', 64, workers, shrunk).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(MemleakError);
      expect(e).toMatchObject({ code: 'E_IO', context: { file, offset: size } });
    }
  });

  it('names stdin, or the device given, when the stream holds no whole slab', () => {
    const cli = `"${process.execPath}" "${join(ROOT, 'dist/src/cli/main.js')}" memleak --base ${BASE.toString(16)} --object-size 64 --raw`;
    for (const [cmd, want] of [[`printf 'abc' | ${cli} -`, 'stdin at offset 3 (0x3): raw dump of 3 bytes'], [`${cli} /dev/null`, '/dev/null at offset 0 (0x0): raw dump of 0 bytes']]) {
      const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
      expect(r.status, cmd).toBe(5);
      expect(r.stderr, cmd).toBe(`sysak memleak: ${want} holds no whole 4096-byte slab\n`);
    }
  });

  it('reads a named pipe (--raw /dev/stdin, --raw <(...)) as a stream: the clusters and words it gives for the file', () => {
    const small = join(dir, 'small.bin');
    writeFileSync(small, readFileSync(file).subarray(0, 8 << 20));
    // Through sh: a real pipe (node's own child stdio is a socket, which /dev/stdin cannot open).
    const run = (raw: string, feed = '') => {
      const cli = `"${process.execPath}" "${join(ROOT, 'dist/src/cli/main.js')}" memleak --raw ${raw} --base ${BASE.toString(16)} --object-size 64 --json`;
      const r = spawnSync('sh', ['-c', feed ? `cat "${feed}" | ${cli}` : cli], { encoding: 'utf8', maxBuffer: 1 << 26 });
      expect(r.stderr).toBe('');
      const rep = JSON.parse(r.stdout);
      // The words of each representative (a stream keeps those; heap targets need the whole file).
      type Word = { offset: number; kind: string; value: string };
      return { digest: rep.scan.memoryDigest, clusters: rep.clusters.map((c: { count: number; object: string; words?: Word[] }) => [c.count, c.object, c.words?.map((w) => [w.offset, w.kind, w.value])]) };
    };
    const want = run(small);
    expect(want.clusters[0][2]).toHaveLength(8);
    expect(run('/dev/stdin', small)).toEqual(want);
  });

  it('--raw FILE and --raw - time their phases (learn, scan with the bytes scanned) for --verbose, timings and progress', () => {
    const small = join(dir, 'timed.bin');
    writeFileSync(small, readFileSync(file).subarray(0, 8 << 20));
    const cli = `"${process.execPath}" "${join(ROOT, 'dist/src/cli/main.js')}" memleak --base ${BASE.toString(16)} --object-size 64 --json --raw`;
    for (const cmd of [`${cli} "${small}"`, `cat "${small}" | ${cli} -`]) {
      const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const phases: { phase: string; bytes: number; items: number }[] = JSON.parse(r.stdout).timings.phases;
      expect(phases.map((p) => p.phase).slice(0, 3), cmd).toEqual(['learn', 'scan', 'cluster']);
      expect(phases[1].bytes).toBe(8 << 20);
      expect(phases[1].items).toBe((8 << 20) / 64 - JSON.parse(r.stdout).scan.objectsFree);
    }
  });
});
