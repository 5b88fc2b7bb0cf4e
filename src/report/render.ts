/** One place that turns any report (slab, vmalloc, page; live or offline) into the chosen format. */
import type { AnyReport } from '../analyze.js';
import type { CheckResult } from '../check/leak.js';
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
  if (r.type === 'vmalloc') return renderVmallocText(r);
  if (r.type === 'page') return renderPageText(r);
  return (check ? renderCheckText(check) + '\n' : '') + renderText(r);
}

export function renderCheck(c: CheckResult, format: Format): string {
  if (format === 'json') return JSON.stringify({ schema: 'sysak-memleak-check/1', check: c }, null, 2) + '\n';
  return format === 'sysak' ? renderCheckSysak(c) : renderCheckText(c);
}
