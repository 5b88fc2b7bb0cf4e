/**
 * `src/report/`: renderers that return strings (text, the original's sysak layout) for every report
 * kind and the check; they read the report types of slab/, vmalloc/, pages/ and check/, and compute
 * nothing.
 *
 * One place that turns any report (slab, vmalloc, page; live or offline) into the chosen format.
 */
import type { AnyReport } from '../analyze.js';
import type { CheckResult, KindAnalysis } from '../check/leak.js';
import { renderText } from './text.js';
import { renderSysak } from './sysak.js';
import { renderKindSysak, renderPageText, renderVmallocText } from './kinds.js';
import { renderCheckSysak, renderCheckText } from './check.js';

export type Format = 'text' | 'sysak' | 'json';

export function render(r: AnyReport, format: Format): string {
  if (format === 'json') return JSON.stringify(r, null, 2) + '\n';
  const check = r.type === 'slab' ? r.check ?? r.live?.check : r.check;
  if (format === 'sysak') {
    const head = check ? renderCheckSysak(check) : '';
    return head + (r.type === 'slab' ? renderSysak(r) : renderKindSysak(r));
  }
  const kinds = r.analysed ? renderAnalysed(r.analysed) : '';
  if (r.type === 'vmalloc') return kinds + renderVmallocText(r);
  if (r.type === 'page') return kinds + renderPageText(r);
  return (check ? renderCheckText(check) + '\n' : '') + kinds + renderText(r);
}

/** --type auto: which kinds ran, in order, and why. */
function renderAnalysed(list: KindAnalysis[]): string {
  const o = ['Kinds analysed (--type auto):'];
  for (const a of list) o.push(`  ${a.kind.padEnd(8)} ${a.verdict ? `-> ${a.verdict}` : '-> no leaker'}  (${a.why})`);
  return o.join('\n') + '\n\n';
}

export function renderCheck(c: CheckResult, format: Format): string {
  if (format === 'json') return JSON.stringify({ schema: 'sysak-memleak-check/1', check: c }, null, 2) + '\n';
  return format === 'sysak' ? renderCheckSysak(c) : renderCheckText(c);
}
