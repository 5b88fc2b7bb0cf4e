/** One scan in a fresh process (so the bench sees this scan's peak RSS): prints {elapsedMs, cpuMs, maxRssKiB, objects, top, digest}. */
import { defaultRequest } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { BENCH_BASE } from './gen-slabs.js';

const [file, size, workers, baseHex] = process.argv.slice(2);
const base = baseHex ? BigInt('0x' + baseHex) : BENCH_BASE;
const cpu0 = process.cpuUsage();
const r = await analyze({ ...defaultRequest(), raw: { file, base }, geometry: { objectSize: Number(size) }, scan: { workers: Number(workers), ...(process.env.CHUNK_KIB ? { chunkBytes: Number(process.env.CHUNK_KIB) << 10 } : {}) } });
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ elapsedMs: r.scan.elapsedMs, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKiB: process.resourceUsage().maxRSS, objects: r.scan.objectsScanned, top: r.clusters[0]?.count ?? 0, digest: r.scan.memoryDigest, clusters: r.clusters.length }) + '\n');
