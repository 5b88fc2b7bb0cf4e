/** The end of `sysak memleak --help`: worked examples of the main flows, and the exit codes (from EXIT). */
import { EXIT } from './exit.js';
import type { ErrorCode } from '../errors.js';

const MEANING: Record<ErrorCode, string> = {
  E_USAGE: 'bad options',
  E_IO: 'a file cannot be read or written',
  E_FORMAT: 'an input is damaged or of no format it reads',
  E_GEOMETRY: 'slab geometry does not fit the input',
  E_KALLSYMS: 'kallsyms unusable (restricted, empty, another boot)',
  E_TRACE: 'the trace is unusable',
  E_NO_DATA: 'nothing to analyse (no slab pages, no events)',
  E_PERMISSION: 'live mode needs root (or tracefs, /proc/kcore access)',
  E_LIVE: 'live mode cannot run on this kernel',
  E_INTERRUPTED: 'interrupted by Ctrl-C (SIGTERM: 143); tracing state restored',
  E_WORKER: 'a scan worker failed',
  E_INTERNAL: 'internal error',
};

export function memleakHelpTail(): string {
  const byCode = new Map<number, string[]>();
  for (const [code, n] of Object.entries(EXIT) as [ErrorCode, number][]) byCode.set(n, [...(byCode.get(n) ?? []), MEANING[code]]);
  const codes = [[0, 'a report was printed (a leak named or not)'] as const, ...[...byCode].sort((a, b) => a[0] - b[0]).map(([n, m]) => [n, m.join('\n       ')] as const)];
  return `
Examples:
  Live, on the leaking host, as root (trace 200 s, then name the leaking function):
    sysak memleak --duration 200
  Quick check from /proc: is kernel memory leaking, which kind, which cache:
    sysak memleak -c
  Keep what a live run read for later, and a page to attach to the ticket:
    sysak memleak --duration 60 --save /var/tmp/leak --html leak.html
  Offline from a vmcore (kdump-compressed, flattened or ELF) or an extract:
    sysak memleak --vmcore /var/crash/vmcore --kallsyms kallsyms.txt --trace trace.txt
  Offline from crash text (rd -64/rd -S of slab pages, kmem -S of the cache):
    sysak memleak --rd rd_pages.txt --kmem kmem_S_kmalloc-64.txt --kallsyms kallsyms.txt --trace trace.txt
  Replay a --save directory or a recording:
    sysak memleak --from /var/tmp/leak
  Cut a small ELF extract of one cache for a bug report:
    sysak memleak extract --vmcore /var/crash/vmcore -o leak.extract.gz

Exit codes:
${codes.map(([n, m]) => `  ${String(n).padStart(3)}  ${m}`).join('\n')}
`;
}
