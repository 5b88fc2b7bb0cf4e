/**
 * The machine's ceiling for the scan, with no scan in it: what one and two threads get from memory
 * and from the ALU, and what a reader thread feeding a summing thread gets (the scan's pipeline shape).
 * Explains what the scan can reach here: two workers fed by one reader cannot beat these numbers.
 *   node dist/bench/ceiling.js [FILE]     (FILE: a big file in the page cache for the read cases)
 * Kernels are tiny AssemblyScript functions compiled here (bench only; asc is a devDependency):
 *   sum   - v128 loads and adds over a range of a shared wasm memory (memory-bound beyond L3);
 *   jssum - the same in a plain JS Int32Array loop (what a JS scan loop can load per ns);
 *   alu   - four independent multiply chains per lane, no memory (compute-bound).
 */
import asc from 'assemblyscript/asc';
import { Worker } from 'node:worker_threads';
import { closeSync, openSync, readSync, statSync } from 'node:fs';

const KERNELS = `
export function sum(p: usize, n: usize): i32 {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  for (let q = p, e = p + n; q < e; q += 64) {
    a = i32x4.add(a, v128.load(q)); b = i32x4.add(b, v128.load(q, 16));
    c = i32x4.add(c, v128.load(q, 32)); d = i32x4.add(d, v128.load(q, 48));
  }
  const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}
export function alu(n: i32): i32 {
  let a = i32x4.splat(1), b = i32x4.splat(2), c = i32x4.splat(3), d = i32x4.splat(4);
  const m = i32x4.splat(0x9e3779b1);
  for (let i = 0; i < n; i++) { a = i32x4.mul(a, m); b = i32x4.mul(b, m); c = i32x4.mul(c, m); d = i32x4.mul(d, m); }
  const s = v128.xor(v128.xor(a, b), v128.xor(c, d));
  return i32x4.extract_lane(s, 0);
}`;

const MiB = 1 << 20;
const AREA = 512 * MiB; // well beyond the 32 MiB L3

/** Worker body: instantiates the kernels on the shared memory, then runs commands from the parent. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory } = workerData;
const k = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('abort'); } } }).exports;
const i32 = new Int32Array(memory.buffer);
function jssum(p, n) { let s = 0; for (let i = p >> 2, e = (p + n) >> 2; i < e; i++) s = (s + i32[i]) | 0; return s; }
const flags = new Int32Array(workerData.flags);
parentPort.on('message', (m) => {
  const t = performance.now();
  let x = 0;
  if (m.op === 'sum') for (let r = 0; r < m.reps; r++) x ^= k.sum(m.p, m.n);
  else if (m.op === 'jssum') for (let r = 0; r < m.reps; r++) x ^= jssum(m.p, m.n);
  else if (m.op === 'alu') x = k.alu(m.n);
  else if (m.op === 'ring') {
    // Consumer of the reader's ring: slot i is full when flags[i] = bytes + 1, -1 ends.
    for (let i = 0; ; i = (i + 1) % m.slots) {
      while (Atomics.load(flags, i) === 0) Atomics.wait(flags, i, 0);
      const v = Atomics.load(flags, i);
      if (v < 0) break;
      x ^= m.js ? jssum(m.p + i * m.slotBytes, v - 1) : k.sum(m.p + i * m.slotBytes, v - 1);
      Atomics.store(flags, i, 0);
      Atomics.notify(flags, i);
    }
  }
  parentPort.postMessage({ ms: performance.now() - t, x });
});`;

interface Job { op: string; p?: number; n?: number; reps?: number; slots?: number; slotBytes?: number; js?: boolean }

async function main() {
  const built = await asc.compileString(KERNELS, {
    optimizeLevel: 3, runtime: 'stub', noAssert: true, enable: ['simd', 'threads'],
    importMemory: true, sharedMemory: true, initialMemory: AREA / 65536, maximumMemory: AREA / 65536,
  });
  if (built.error || !built.binary) throw new Error(`asc: ${built.stderr.toString()}`);
  const module = new WebAssembly.Module(built.binary as Uint8Array<ArrayBuffer>);
  const memory = new WebAssembly.Memory({ initial: AREA / 65536, maximum: AREA / 65536, shared: true });
  const flags = new SharedArrayBuffer(64);
  const bytes = new Uint8Array(memory.buffer);
  for (let i = 0; i < AREA; i += 4096) bytes[i] = i >>> 12; // touch every page
  const workers = [0, 1].map(() => new Worker(WORKER, { eval: true, workerData: { module, memory, flags } }));
  const run = (w: Worker, job: Job) => new Promise<{ ms: number }>((res) => { w.once('message', res); w.postMessage(job); });
  const both = async (jobs: Job[]) => { const t = performance.now(); await Promise.all(jobs.map((j, i) => run(workers[i], j))); return performance.now() - t; };
  const gbs = (b: number, ms: number) => (b / (ms * 1e6)).toFixed(2);
  // Warm up in both workers: V8 runs a wasm function's first calls in its baseline tier (Liftoff) and a
  // JS loop in the interpreter; a call never switches tier midway.
  for (let i = 0; i < 20; i++) {
    await both([{ op: 'sum', p: 0, n: MiB, reps: 64 }, { op: 'sum', p: 0, n: MiB, reps: 64 }]);
    await both([{ op: 'jssum', p: 0, n: MiB, reps: 4 }, { op: 'jssum', p: 0, n: MiB, reps: 4 }]);
    await both([{ op: 'alu', n: 1 << 16 }, { op: 'alu', n: 1 << 16 }]);
  }
  // Both threads do the same work as the one thread alone: 2x is perfect scaling.
  const line = (what: string, one: number, two: number, bytes: number) =>
    console.log(`${what}: 1 thread ${gbs(bytes, one)} GB/s, 2 threads ${gbs(2 * bytes, two)} GB/s together (${((one * 2) / two).toFixed(2)}x)`);
  const R = 4;
  line(`wasm v128 sum over ${AREA / 2 / MiB} MiB (memory-bound)`, await both([{ op: 'sum', p: 0, n: AREA / 2, reps: R }]),
    await both([{ op: 'sum', p: 0, n: AREA / 2, reps: R }, { op: 'sum', p: AREA / 2, n: AREA / 2, reps: R }]), (AREA / 2) * R);
  line('wasm v128 sum over 1 MiB (in L2)', await both([{ op: 'sum', p: 0, n: MiB, reps: 4096 }]),
    await both([{ op: 'sum', p: 0, n: MiB, reps: 4096 }, { op: 'sum', p: 8 * MiB, n: MiB, reps: 4096 }]), 4096 * MiB);
  line(`JS Int32Array sum over ${AREA / 2 / MiB} MiB`, await both([{ op: 'jssum', p: 0, n: AREA / 2, reps: 1 }]),
    await both([{ op: 'jssum', p: 0, n: AREA / 2, reps: 1 }, { op: 'jssum', p: AREA / 2, n: AREA / 2, reps: 1 }]), AREA / 2);
  const n = 1 << 27;
  const alu1 = await both([{ op: 'alu', n }]);
  const alu2 = await both([{ op: 'alu', n }, { op: 'alu', n }]);
  console.log(`ALU (v128 multiplies, no memory): 1 thread ${((n * 4) / (alu1 * 1e6)).toFixed(2)} G mul/s, 2 threads ${((2 * n * 4) / (alu2 * 1e6)).toFixed(2)} G mul/s together (${((alu1 * 2) / alu2).toFixed(2)}x)`);

  const file = process.argv[2];
  if (file) {
    const size = statSync(file).size;
    const slotBytes = 4 * MiB;
    const slots = 4;
    const readAll = (into: (i: number) => Uint8Array, each: (i: number, n: number) => void) => {
      const fd = openSync(file, 'r');
      let i = 0;
      for (;;) {
        const buf = into(i % slots);
        const got = readSync(fd, buf, 0, buf.length, null);
        if (got === 0) break;
        each(i % slots, got);
        i++;
      }
      closeSync(fd);
    };
    let t = performance.now();
    readAll((i) => bytes.subarray(i * slotBytes, (i + 1) * slotBytes), () => {});
    const readMs = performance.now() - t;
    console.log(`read() of ${(size / MiB).toFixed(0)} MiB in 4 MiB chunks into shared memory, no consumer: ${gbs(size, readMs)} GB/s`);
    const f = new Int32Array(flags);
    for (const js of [false, true]) {
      f.fill(0);
      t = performance.now();
      const consumer = run(workers[0], { op: 'ring', p: 0, slots, slotBytes, js });
      readAll(
        (i) => {
          while (Atomics.load(f, i) !== 0) Atomics.wait(f, i, Atomics.load(f, i));
          return bytes.subarray(i * slotBytes, (i + 1) * slotBytes);
        },
        (i, got) => {
          Atomics.store(f, i, got + 1);
          Atomics.notify(f, i);
        },
      );
      for (let i = 0; i < slots; i++) {
        while (Atomics.load(f, i) !== 0) Atomics.wait(f, i, Atomics.load(f, i));
        Atomics.store(f, i, -1);
        Atomics.notify(f, i);
      }
      await consumer;
      const all = performance.now() - t;
      console.log(`read() in this thread + ${js ? 'JS' : 'wasm v128'} sum in a worker (a ring of ${slots} x 4 MiB): ${gbs(size, all)} GB/s; the sum alone on the same data ${gbs(size, js ? (await both([{ op: 'jssum', p: 0, n: slotBytes, reps: Math.round(size / slotBytes) }])) : (await both([{ op: 'sum', p: 0, n: slotBytes, reps: Math.round(size / slotBytes) }])))} GB/s (in cache)`);
    }
  }
  await Promise.all(workers.map((w) => w.terminate()));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
