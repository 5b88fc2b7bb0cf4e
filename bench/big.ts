/**
 * npm run bench, end-to-end part: whole analyses of real recordings, per phase.
 * - The 768 MiB demo recording (../shared/recordings/demo-kmalloc64 or samples): whole analysis time, best
 *   of 5, with the default --workers, and its phases: the fixed costs (symbols, BTF, trace) that dominate
 *   small dumps.
 * - The big recordings in BENCH_BIG (default ../rec-big next to the project; bench/README.md says how
 *   to record them): `--vmcore` on vmcore.elf and vmcore.kdump, and `--from DIR`, to verdict (default --workers), with the
 *   GB/s of the cache's slab memory end to end, peak RSS, every phase; then drgn's walk of the same
 *   cache where drgn and the kernel's debug vmlinux exist (bench/drgn-walk.py), side by side.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, '..', '..');
const cli = join(here, '..', 'src', 'cli', 'main.js');
const GiB = 2 ** 30;

interface PhaseRow {
  phase: string;
  ms: number;
  bytes: number;
  items: number;
  unit: string;
  peakRssMiB: number;
  note?: string;
}

interface Run {
  wallS: number;
  peakRssMiB: number;
  report: {
    elapsedMs: number;
    scan: { slabs: number; objectsScanned: number; memoryDigest: string; workers: number };
    cache: { name: string; slabSize: number };
    clusters: { count: number }[];
    verdict: { function: string } | null;
    timings?: { phases: PhaseRow[]; totalMs: number; peakRssMiB: number };
  };
}

/** One sysak run under /usr/bin/time (peak RSS of the whole process tree's main process). */
function runSysak(args: string[]): Run {
  const t = performance.now();
  const useTime = existsSync('/usr/bin/time');
  const cmd = useTime ? '/usr/bin/time' : process.execPath;
  const argv = useTime ? ['-f', 'TIME %e %M', process.execPath, cli, 'memleak', ...args, '--json'] : [cli, 'memleak', ...args, '--json'];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 28 });
  const wallS = (performance.now() - t) / 1000;
  if (r.status !== 0 && r.status !== 1) throw new Error(`sysak memleak ${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(-2000)}`);
  const m = /TIME ([\d.]+) (\d+)/.exec(r.stderr);
  return { wallS, peakRssMiB: m ? Number(m[2]) / 1024 : NaN, report: JSON.parse(r.stdout) };
}

function phaseTable(rows: PhaseRow[] | undefined): string {
  if (!rows) return '  (no timings in the report)';
  return rows
    .map((p) => {
      const amount = p.bytes ? `${(p.bytes / 2 ** 20).toFixed(0)} MiB` : p.items ? `${p.items} ${p.unit}` : '';
      const rate = p.bytes && p.ms ? `${(p.bytes / (p.ms * 1e6)).toFixed(2)} GB/s` : '';
      return `  ${p.phase.padEnd(16)} ${p.ms.toFixed(0).padStart(7)} ms ${amount.padStart(16)} ${rate.padStart(11)}  peak ${String(p.peakRssMiB).padStart(4)} MiB${p.note ? `  (${p.note})` : ''}`;
    })
    .join('\n');
}

function summary(label: string, r: Run): void {
  const rep = r.report;
  const slabBytes = rep.scan.slabs * rep.cache.slabSize;
  console.log(
    `${label}: ${r.wallS.toFixed(2)} s wall, ${(slabBytes / (r.wallS * 1e9)).toFixed(2)} GB/s of the cache's slab memory (${(slabBytes / GiB).toFixed(2)} GiB, ${rep.scan.objectsScanned} objects counted), peak RSS ${r.peakRssMiB.toFixed(0)} MiB, ${rep.scan.workers} workers; verdict ${rep.verdict?.function ?? 'none'}, top cluster ${rep.clusters[0]?.count}, digest ${rep.scan.memoryDigest}`,
  );
  console.log(phaseTable(rep.timings?.phases));
}

/** The 768 MiB demo recording: fixed costs. */
export function benchSmallRecording(): void {
  const dir = [join(root, '..', 'shared', 'recordings', 'demo-kmalloc64')].find((d) => existsSync(join(d, 'vmcore.kdump')));
  if (!dir) {
    console.log('\n## 768 MiB recording: skipped (no ../shared/recordings/demo-kmalloc64/vmcore.kdump)');
    return;
  }
  console.log(`\n## whole analysis of the 768 MiB demo recording (--from ${dir}), best of 5`);
  let best: Run | null = null;
  for (let i = 0; i < 5; i++) {
    // The default worker count, as a user runs it: a cache this small is scanned in the main thread.
    const r = runSysak(['--from', dir]);
    if (!best || r.wallS < best.wallS) best = r;
  }
  summary('best', best!);
}

function drgnWalk(elf: string, osrelease: string, cache: string): string {
  const vmlinux = `/usr/lib/debug/boot/vmlinux-${osrelease}`;
  const py = '/usr/bin/python3';
  if (!existsSync(vmlinux)) return `drgn: skipped (no ${vmlinux})`;
  if (spawnSync(py, ['-c', 'import drgn'], { encoding: 'utf8' }).status !== 0) return 'drgn: skipped (python3-drgn not installed)';
  const timeout = Number(process.env.BENCH_DRGN_TIMEOUT ?? 900) * 1000;
  const t = performance.now();
  const r = spawnSync(py, [join(root, 'bench', 'drgn-walk.py'), elf, vmlinux, cache], { encoding: 'utf8', timeout });
  const s = (performance.now() - t) / 1000;
  if (r.error || r.status !== 0) return `drgn: failed or timed out after ${s.toFixed(0)} s (${(r.stderr ?? '').trim().split('\n').pop() ?? r.error})`;
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return `drgn ${j.tool}: open + debug info ${j.open_s} s, walk of every allocated ${cache} object ${j.walk_s} s (${j.objects} objects), ${s.toFixed(1)} s wall`;
}

/** Drops the page cache (sync first); false where this process may not. */
function dropCaches(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Every recording under BENCH_BIG with a vmcore. */
/** Reads a file through (into the page cache, where it fits); returns the seconds it took. */
function readThrough(path: string): number {
  const t = performance.now();
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(16 << 20);
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
  return (performance.now() - t) / 1000;
}

export function benchBigRecordings(): void {
  const big = resolve(process.env.BENCH_BIG ?? join(root, '..', 'rec-big'));
  const dirs = existsSync(big) ? readdirSync(big).map((d) => join(big, d)).filter((d) => existsSync(join(d, 'vmcore.elf')) || existsSync(join(d, 'vmcore.kdump'))) : [];
  if (dirs.length === 0) {
    console.log(`\n## big recordings: skipped (none in ${big}; bench/README.md says how to record them)`);
    return;
  }
  for (const dir of dirs) {
    const manifest = existsSync(join(dir, 'manifest.json')) ? JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) : {};
    const cache: string = manifest.leak?.cache ?? 'kmalloc-64';
    const trace = join(dir, 'guest', 'trace.txt');
    console.log(`\n## big recording ${dir}: ${manifest.leak?.leaked_objects ?? '?'} leaked objects in ${cache}`);
    let osrelease = '';
    for (const f of ['vmcore.elf', 'vmcore.kdump']) {
      const p = join(dir, f);
      if (!existsSync(p)) continue;
      // The default worker count (cores - 1, the main thread scanning beside them): what a user runs.
      const args = ['--vmcore', p, '--cache', cache, ...(existsSync(trace) ? ['--trace', trace] : [])];
      // BENCH_COLD=1 (root): the same run with the page cache dropped first (what a first run on a fresh
      // dump costs: disk reads), before the warm run.
      if (process.env.BENCH_COLD === '1') {
        const cold = dropCaches() ? runSysak(args) : null;
        if (cold) summary(`--vmcore ${f}, cold page cache`, cold);
        else console.log(`--vmcore ${f}, cold page cache: skipped (cannot write /proc/sys/vm/drop_caches: not root)`);
      }
      // The warm run: the dump read through once first, so it is in the page cache whatever the bench's
      // own 1 GiB files evicted (an 8 GiB ELF partly on disk ran at 0.55 GB/s instead of 1.9).
      const warmS = readThrough(p);
      const r = runSysak(args);
      console.log(`(page cache warmed: the file read through in ${warmS.toFixed(2)} s first)`);
      osrelease = (r.report as unknown as { source: { dump: { osrelease: string } } }).source.dump?.osrelease ?? osrelease;
      summary(`--vmcore ${f} (${(statSync(p).size / GiB).toFixed(2)} GiB file)`, r);
    }
    summary(`--from ${dir}`, runSysak(['--from', dir]));
    if (existsSync(join(dir, 'vmcore.elf')) && process.env.BENCH_DRGN !== '0') console.log(drgnWalk(join(dir, 'vmcore.elf'), osrelease || manifest.kernel?.release, cache));
  }
}

// `node dist/bench/big.js`: only this part of the bench.
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  benchSmallRecording();
  benchBigRecordings();
}
