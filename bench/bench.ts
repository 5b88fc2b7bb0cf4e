/**
 * npm run bench: the scan engine against the read limit and the seed's manual method, on synthetic slab
 * dumps (bench/gen-slabs.ts: the leak fills whole slabs, other slabs mix shapes and free objects).
 * Prints, in one run: GB/s and ns/object for 32/64/256-byte objects with 1 and 2 workers, peak RSS,
 * the same for real slab contents (the demo recording's kmalloc-64 pages replicated, bench/real-slabs.ts)
 * on the wasm kernel and on the JS loop, the machine's ceiling without a scan (bench/ceiling.ts),
 * `cat FILE > /dev/null` on the same file, `rd`-style hex text | sort | uniq -c | sort -rn on a slice,
 * and the seed's case (419,440,512 kmalloc-32 objects = 13.4 GB piped through `sysak memleak --raw -`).
 * BENCH_GIB (default 1) sets the file size, BENCH_SEED=0 skips the seed's case, BENCH_RECORDINGS=0 the
 * whole analyses of recordings (bench/big.ts: the 768 MiB demo, the big recordings in BENCH_BIG, drgn;
 * BENCH_DRGN=0 skips drgn).
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import xxhash from 'xxhash-wasm';
import { templateKey } from '../src/scan/heavy.js';
import { BENCH_BASE, SlabGenerator } from './gen-slabs.js';
import { benchBigRecordings, benchSmallRecording } from './big.js';
import { loadRealSlabs, writeReplicated } from './real-slabs.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const GiB = 2 ** 30;
const fileBytes = Number(process.env.BENCH_GIB ?? 1) * GiB;
const node = process.execPath;

function sh(cmd: string): { ms: number; out: string; err: string } {
  const t = performance.now();
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return { ms: performance.now() - t, out: r.stdout, err: r.stderr };
}

async function perObjectHashes(): Promise<string> {
  const xx = await xxhash();
  const n = 1 << 18;
  const objs = new Uint8Array(n * 32);
  let t = performance.now();
  let h = 0n;
  for (let i = 0; i < n; i++) h ^= xx.h64Raw(objs.subarray(i * 32, i * 32 + 32));
  const xxPer = ((performance.now() - t) * 1e6) / n;
  const u32 = new Uint32Array(objs.buffer);
  t = performance.now();
  let k = 0;
  for (let i = 0; i < n; i++) k ^= templateKey(u32.subarray(i * 8, i * 8 + 8), 8);
  const jsPer = ((performance.now() - t) * 1e6) / n;
  const big = new Uint8Array(64 << 20);
  t = performance.now();
  h ^= xx.h64Raw(big);
  const xxGBs = big.length / ((performance.now() - t) * 1e6);
  return `hash per 32-byte object: xxhash-wasm ${xxPer.toFixed(0)} ns, JS template key ${jsPer.toFixed(0)} ns; xxhash-wasm over 64 MiB ${xxGBs.toFixed(2)} GB/s (${h & 1n}${k & 1})`;
}

/** The seed's manual method on a slice: every object as rd-style hex words, then sort | uniq -c | sort -rn. */
function manualMethod(file: string, size: number, sliceBytes: number): string {
  const fd = openSync(file, 'r');
  const buf = new Uint8Array(sliceBytes);
  readSync(fd, buf, 0, sliceBytes, 0);
  closeSync(fd);
  const dv = new DataView(buf.buffer);
  const lines: string[] = [];
  for (let o = 0; o < sliceBytes; o += size) {
    const words: string[] = [];
    for (let w = 0; w < size; w += 8) words.push(dv.getBigUint64(o + w, true).toString(16).padStart(16, '0'));
    lines.push(words.join(' '));
  }
  const txt = join(tmpdir(), `sysak-bench-rd-${process.pid}.txt`);
  writeFileSync(txt, lines.join('\n') + '\n');
  const r = sh(`sort ${txt} | uniq -c | sort -rn | head -1`);
  rmSync(txt);
  return `${(sliceBytes / (r.ms * 1e6)).toFixed(3)} GB/s on a ${sliceBytes >> 20} MiB slice (${lines.length} objects; the text itself not counted), top line ${r.out.trim().split(/\s+/)[0]}x`;
}

/**
 * `cat` and the best of SCAN_RUNS scans per worker count of one raw dump, each in a fresh process; with `js`, the same scans on
 * the JS loop too (SYSAK_SCAN_KERNEL=js), for the wasm kernel's gain in the same run. CPU s/GiB is the
 * process's user + system time (every thread) per GiB: the cost that other load on the machine cannot
 * hide, beside the wall-clock rate.
 */
/** Fresh-process runs per scan row (BENCH_SCAN_RUNS): the row shows the fastest. */
const SCAN_RUNS = Math.max(1, Number(process.env.BENCH_SCAN_RUNS ?? 3));

function scanCase(title: string, file: string, size: number, base: bigint, js = false): void {
  const bytes = statSync(file).size;
  // cat gets the same best-of as the scans it is compared with.
  const cat = Array.from({ length: SCAN_RUNS }, () => sh(`cat ${file} > /dev/null`)).reduce((a, b) => (b.ms < a.ms ? b : a));
  const catGBs = bytes / (cat.ms * 1e6);
  console.log(`\n## ${title}; cat FILE > /dev/null: ${catGBs.toFixed(2)} GB/s; each row the best of ${SCAN_RUNS} runs (load average ${loadavg()[0].toFixed(1)})`);
  for (const kernel of js ? ['wasm', 'js'] : ['wasm']) {
    const rates: number[] = [];
    for (const workers of [0, 1, 2]) {
      const env = kernel === 'js' ? 'SYSAK_SCAN_KERNEL=js ' : '';
      // Best of SCAN_RUNS fresh processes: a 1 GiB scan is ~0.25 s, where one stray process moves it by 20%.
      const runs = Array.from({ length: SCAN_RUNS }, () => JSON.parse(sh(`${env}${node} ${join(here, 'scan-once.js')} ${file} ${size} ${workers} ${base.toString(16)}`).out));
      const r = runs.reduce((a, b) => (b.elapsedMs < a.elapsedMs ? b : a));
      if (runs.some((x) => x.digest !== r.digest)) throw new Error(`runs of the same scan disagree: ${runs.map((x) => x.digest).join(' ')}`);
      const gbs = bytes / (r.elapsedMs * 1e6);
      rates.push(gbs);
      console.log(
        `${kernel === 'js' ? 'JS loop, ' : ''}workers ${workers}: ${gbs.toFixed(3)} GB/s, ${((r.elapsedMs * 1e6) / r.objects).toFixed(1)} ns/object, ${(gbs / catGBs).toFixed(2)} of cat, CPU ${(r.cpuMs / 1000 / (bytes / GiB)).toFixed(2)} s/GiB, peak RSS ${(r.maxRssKiB / 1024).toFixed(0)} MiB, top cluster ${r.top}, digest ${r.digest}`,
      );
    }
    console.log(`${kernel === 'js' ? 'JS loop, ' : ''}2 workers / 1 worker: ${(rates[2] / rates[1]).toFixed(2)}x`);
  }
}

async function main() {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(`# sysak memleak bench: node ${process.version}, ${cpus().length} x ${cpu}, files of ${fileBytes / GiB} GiB in ${tmpdir()}`);
  console.log(await perObjectHashes());
  const dir = mkdtempSync(join(tmpdir(), 'sysak-bench-'));
  try {
    for (const size of [32, 64, 256]) {
      const file = join(dir, `slabs-${size}.bin`);
      const fd = openSync(file, 'w');
      new SlabGenerator(size).write(fd, Math.floor(fileBytes / size));
      closeSync(fd);
      scanCase(`${size}-byte objects: ${(fileBytes / size / 1e6).toFixed(1)} M objects`, file, size, BENCH_BASE);
      console.log(`manual method (rd text | sort | uniq -c | sort -rn): ${manualMethod(file, size, 32 << 20)}`);
      rmSync(file);
    }
    // Real contents: the demo recording's kmalloc-64 slab pages (bench/real-slabs.ts), replicated.
    const real = loadRealSlabs();
    const file = join(dir, 'real-kmalloc64.bin');
    const fd = openSync(file, 'w');
    const slabs = writeReplicated(fd, real, real.bases[0], fileBytes);
    closeSync(fd);
    scanCase(`real slab contents: ${real.pages.length} ${real.cache} slab pages of the demo recording replicated to ${slabs} slabs, ${((slabs * real.slabSize) / real.stride / 1e6).toFixed(1)} M objects`, file, real.stride, real.bases[0], true);
    // The ceiling: the same machine without the scan (bench/ceiling.ts), reading the same file.
    console.log(`\n## the machine's ceiling (bench/ceiling.ts: no scan; load average ${loadavg()[0].toFixed(1)})`);
    console.log(sh(`${node} ${join(here, 'ceiling.js')} ${file}`).out.trim());
    rmSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (process.env.BENCH_SEED !== '0') {
    const objects = 419_440_512;
    const time = existsSync('/usr/bin/time') ? '/usr/bin/time -f "%e s wall, peak RSS %M KiB"' : '';
    const cmd = `${node} ${join(here, 'gen-slabs.js')} 32 ${objects} | ${time} ${node} ${join(here, '..', 'src', 'cli', 'main.js')} memleak --raw - --base ${BENCH_BASE.toString(16)} --object-size 32 --json`;
    const r = sh(cmd);
    const rep = JSON.parse(r.out);
    console.log(`\n## the seed's case: ${objects} kmalloc-32 objects (${((objects * 32) / 1e9).toFixed(1)} GB) generated and piped through sysak memleak --raw - (default workers: ${rep.scan.workers}; load average ${loadavg()[0].toFixed(1)})`);
    console.log(`wall ${(r.ms / 1000).toFixed(1)} s (generator included), scan ${(rep.scan.elapsedMs / 1000).toFixed(1)} s = ${((objects * 32) / (rep.scan.elapsedMs * 1e6)).toFixed(2)} GB/s; ${r.err.trim().split('\n').pop()}; top cluster ${rep.clusters[0].count} objects`);
  }  // Whole analyses of real recordings: fixed costs on the 768 MiB one, the big ones per phase, drgn beside.
  if (process.env.BENCH_RECORDINGS !== '0') {
    benchSmallRecording();
    benchBigRecordings();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
