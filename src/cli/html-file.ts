/** `--html FILE`: checked before the run (a live run must not end in an unwritable path), written whole. */
import { renameSync, rmSync, statSync, writeFileSync, accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MemleakError } from '../errors.js';
import type { AnyReport } from '../analyze.js';
import type { CheckResult } from '../check/leak.js';
import { renderCheckHtml, renderHtml } from '../report/html.js';
import { versionText } from '../ship/version.js';

export function checkHtmlTarget(file: string): void {
  const dir = dirname(resolve(file));
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new Error('is a directory');
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new MemleakError('E_IO', `cannot write the HTML report: ${(e as Error).message}`, { file });
  }
}

/** Renders the page and writes it beside the target, then renames: never half a page. */
export function writeHtmlReport(file: string, r: AnyReport | CheckResult): void {
  const tool = versionText().trim();
  const html = 'schema' in r ? renderHtml(r, tool) : renderCheckHtml(r, tool);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, html);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new MemleakError('E_IO', `cannot write the HTML report: ${(e as Error).message}`, { file });
  }
}
