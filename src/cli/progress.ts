/**
 * Renders the library's progress events and phase timings on stderr. A progress line appears only
 * for a phase that has run for PROGRESS_AFTER_MS, only when stderr is a terminal, and never with
 * --quiet; it is rewritten in place and cleared when the phase ends.
 */
import type { PhaseTiming, ProgressEvent, ProgressListener, Timings } from '../phases.js';

export const PROGRESS_AFTER_MS = 2000;

function human(n: number, unit: string): string {
  if (unit === 'bytes') {
    if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
    if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
    return `${(n / 1024).toFixed(0)} KiB`;
  }
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M ${unit}`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k ${unit}`;
  return `${n} ${unit}`;
}

function rate(n: number, ms: number, unit: string): string {
  const perS = ms > 0 ? (n * 1000) / ms : 0;
  return unit === 'bytes' ? `${human(perS, 'bytes')}/s` : `${human(Math.round(perS), unit)}/s`;
}

/** The text of one progress line (no terminal control characters). */
export function progressLine(e: ProgressEvent): string {
  let s = `${e.phase}: ${human(e.done, e.unit)}`;
  if (e.total !== null && e.total > 0) s += ` of ${human(e.total, e.unit)} (${Math.min(100, Math.floor((100 * e.done) / e.total))}%)`;
  s += `, ${rate(e.done, e.elapsedMs, e.unit)}`;
  if (e.total !== null && e.done > 0 && e.total > e.done) {
    const eta = ((e.total - e.done) * e.elapsedMs) / e.done / 1000;
    s += `, ETA ${eta < 60 ? `${eta.toFixed(0)} s` : `${Math.floor(eta / 60)} min ${Math.round(eta % 60)} s`}`;
  }
  return s;
}

/** A listener that draws progress on a terminal stream; null when the stream is not a TTY or quiet is set. */
export function terminalProgress(stream: NodeJS.WriteStream, quiet: boolean): ProgressListener | null {
  if (quiet || !stream.isTTY) return null;
  let shown = false;
  return (e) => {
    if (e.finished) {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
      return;
    }
    if (e.elapsedMs < PROGRESS_AFTER_MS) return;
    const width = Math.max(40, (stream.columns || 80) - 1);
    stream.write(`\r\x1b[2K${progressLine(e).slice(0, width)}`);
    shown = true;
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** `--verbose`: one line per phase, then the total. */
export function timingsTable(t: Timings): string {
  const rows = t.phases.map((p: PhaseTiming) => {
    const amount = p.bytes > 0 ? human(p.bytes, 'bytes') : p.items > 0 ? human(p.items, p.unit) : '';
    const speed = p.bytes > 0 && p.ms > 0 ? `${(p.bytes / (p.ms * 1e6)).toFixed(2)} GB/s` : p.items > 0 && p.ms > 0 ? rate(p.items, p.ms, p.unit) : '';
    return `  ${p.phase.padEnd(16)} ${pad(p.ms.toFixed(1), 9)} ms ${pad(amount, 14)} ${pad(speed, 14)}  peak RSS ${pad(String(p.peakRssMiB), 5)} MiB${p.note ? `  (${p.note})` : ''}`;
  });
  return [`timings (total ${t.totalMs.toFixed(0)} ms, peak RSS ${t.peakRssMiB} MiB):`, ...rows].join('\n') + '\n';
}
