/**
 * Progress (issue 14): the library emits events, the CLI draws them only on a terminal, only for a phase
 * that has run 2 s, never with --quiet; every phase lands in the report's timings.
 */
import { describe, expect, it } from 'vitest';
import { Phases, type ProgressEvent } from '../src/phases.js';
import { progressLine, terminalProgress, timingsTable } from '../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, columns: 80, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream };
}

const ev = (elapsedMs: number, done: number, finished = false): ProgressEvent => ({ phase: 'scan', unit: 'bytes', done, total: 4 * 2 ** 30, elapsedMs, finished });

describe('progress', () => {
  it('draws nothing off a terminal or with --quiet', () => {
    expect(terminalProgress(fakeStream(false).stream, false)).toBeNull();
    expect(terminalProgress(fakeStream(true).stream, true)).toBeNull();
  });

  it('on a terminal: nothing for the first 2 s, then done, rate and ETA in place; cleared at the end', () => {
    const { out, stream } = fakeStream(true);
    const draw = terminalProgress(stream, false)!;
    draw(ev(1500, 2 ** 30));
    expect(out).toEqual([]);
    draw(ev(4000, 2 * 2 ** 30));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\r\x1b\[2Kscan: 2\.00 GiB of 4\.00 GiB \(50%\), 512\.0 MiB\/s, ETA 4 s$/);
    draw(ev(8000, 4 * 2 ** 30, true));
    expect(out[1]).toBe('\r\x1b[2K');
    expect(progressLine({ phase: 'learn', unit: 'objects', done: 20000, total: null, elapsedMs: 2000, finished: false })).toBe('learn: 20.0 k objects, 10.0 k objects/s');
  });

  it('phases report events while they run and land in the timings in order', () => {
    const seen: ProgressEvent[] = [];
    const phases = new Phases((e) => seen.push(e));
    phases.run('open', 'bytes', (p) => p.add(10));
    const inner = phases.start('slab reads', 'bytes');
    inner.reports = false;
    inner.add(5);
    inner.end();
    const t = phases.finish();
    expect(t.phases.map((p) => [p.phase, p.bytes])).toEqual([['open', 10], ['slab reads', 5]]);
    expect(seen.filter((e) => e.finished).map((e) => e.phase)).toEqual(['open']);
    expect(t.peakRssMiB).toBeGreaterThan(0);
    expect(timingsTable(t)).toMatch(/^timings \(total \d+ ms, peak RSS \d+ MiB\):\n  open /);
  });
});
