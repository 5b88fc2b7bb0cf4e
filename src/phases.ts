/**
 * Where an analysis spends its time and memory: one record per phase (open, symbols, types, memmap
 * walk, freelists, slab reads, scan, merge, symbolize, trace, mark) with its wall time, the bytes and
 * items it handled and the resident memory it reached, and progress events for long phases. The
 * library only produces data here: the CLI prints `--verbose` tables and renders progress lines.
 */

export type ProgressUnit = 'bytes' | 'objects' | 'pages' | 'slabs' | 'lines';

/** One phase that is running: emitted at most every PROGRESS_EVERY_MS, and once when it ends. */
export interface ProgressEvent {
  phase: string;
  unit: ProgressUnit;
  done: number;
  /** Null when the end is unknown (a stream). */
  total: number | null;
  elapsedMs: number;
  finished: boolean;
}

export type ProgressListener = (e: ProgressEvent) => void;

export interface PhaseTiming {
  phase: string;
  ms: number;
  /** Bytes the phase read or handled (0 when it handles none). */
  bytes: number;
  /** Items (objects, struct pages, slabs, lines ...) in `unit`. */
  items: number;
  unit: ProgressUnit;
  /** Highest resident set size sampled while the phase ran (MiB). */
  peakRssMiB: number;
  /** Free text: what overlaps, what the bytes are. */
  note?: string;
}

export interface Timings {
  phases: PhaseTiming[];
  totalMs: number;
  /** The process's peak resident set size (getrusage maxrss) at the end of the analysis (MiB). */
  peakRssMiB: number;
}

const PROGRESS_EVERY_MS = 100;
const MiB = 1 << 20;

function rssMiB(): number {
  return Math.round(process.memoryUsage.rss() / MiB);
}

export class Phase {
  bytes = 0;
  items = 0;
  note: string | undefined;
  total: number | null = null;
  /** False for a phase that runs inside another one (its progress would interleave with the outer one's). */
  reports = true;
  private readonly t0 = performance.now();
  private lastEmit = this.t0;
  private peak = rssMiB();
  private ended = false;

  constructor(
    readonly name: string,
    readonly unit: ProgressUnit,
    private readonly owner: Phases,
  ) {}

  /** Counts work done; emits a progress event (and samples RSS) at most every 100 ms. */
  add(bytes: number, items = 0): void {
    this.bytes += bytes;
    this.items += items;
    this.tick();
  }

  /** Progress in the phase's unit when it is not the byte/item count (e.g. struct pages walked). */
  tick(): void {
    const now = performance.now();
    if (now - this.lastEmit < PROGRESS_EVERY_MS) return;
    this.lastEmit = now;
    this.peak = Math.max(this.peak, rssMiB());
    if (this.reports) this.owner.emit(this.event(now, false));
  }

  private done(): number {
    return this.unit === 'bytes' ? this.bytes : this.items;
  }

  private event(now: number, finished: boolean): ProgressEvent {
    return { phase: this.name, unit: this.unit, done: this.done(), total: this.total, elapsedMs: now - this.t0, finished };
  }

  end(): PhaseTiming {
    const now = performance.now();
    this.peak = Math.max(this.peak, rssMiB());
    const t: PhaseTiming = { phase: this.name, ms: Math.round((now - this.t0) * 10) / 10, bytes: this.bytes, items: this.items, unit: this.unit, peakRssMiB: this.peak };
    if (this.note) t.note = this.note;
    if (!this.ended) {
      this.ended = true;
      this.owner.record(t);
      if (this.reports) this.owner.emit(this.event(now, true));
    }
    return t;
  }
}

/** The phases of one analysis, in the order they ran. */
export class Phases {
  readonly list: PhaseTiming[] = [];
  private readonly t0 = performance.now();

  constructor(private readonly listener: ProgressListener | null = null) {}

  start(name: string, unit: ProgressUnit = 'bytes', total: number | null = null): Phase {
    const p = new Phase(name, unit, this);
    p.total = total;
    return p;
  }

  /** Runs fn as one phase; fn may count work on the phase it gets. */
  run<T>(name: string, unit: ProgressUnit, fn: (p: Phase) => T): T {
    const p = this.start(name, unit);
    try {
      return fn(p);
    } finally {
      p.end();
    }
  }

  async runAsync<T>(name: string, unit: ProgressUnit, fn: (p: Phase) => Promise<T>): Promise<T> {
    const p = this.start(name, unit);
    try {
      return await fn(p);
    } finally {
      p.end();
    }
  }

  record(t: PhaseTiming): void {
    this.list.push(t);
  }

  emit(e: ProgressEvent): void {
    this.listener?.(e);
  }

  finish(): Timings {
    return {
      phases: this.list,
      totalMs: Math.round((performance.now() - this.t0) * 10) / 10,
      peakRssMiB: Math.round((process.resourceUsage().maxRSS * 1024) / MiB),
    };
  }
}

/** For callers that do not measure: every phase is a no-op sink. */
export const NO_PHASES = (): Phases => new Phases(null);
