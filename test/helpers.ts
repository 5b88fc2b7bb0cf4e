import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MemleakError } from '../src/errors.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SAMPLES = join(ROOT, 'samples');

/**
 * A guest payload's run.sh: test/harness/tracefs-state.sh (T and state(), the tracefs snapshot every
 * payload compares) followed by the payload script, one file so the guest gets nothing else.
 */
export function writePayloadScript(script: string, stage: string): void {
  const harness = join(ROOT, 'test', 'harness');
  writeFileSync(join(stage, 'run.sh'), readFileSync(join(harness, 'tracefs-state.sh'), 'utf8') + readFileSync(join(harness, script), 'utf8'));
}

export function sample(rel: string): string {
  return join(SAMPLES, rel);
}

export function sampleText(rel: string): string {
  const buf = readFileSync(sample(rel));
  return (rel.endsWith('.gz') ? gunzipSync(buf) : buf).toString('utf8');
}

export interface Expected {
  cache: string;
  leakFunction: string | null;
  leakCookie: string;
  leakedInDumpedPages: number;
  tableObjectsInDumpedPages: number;
  leakedWhileTracing: number;
  dumpedPages: number;
}

export function expected(rec: string): Expected {
  return JSON.parse(readFileSync(sample(`${rec}/expected.json`), 'utf8'));
}

/** The MemleakError a call throws (anything else, or no error, fails the test). */
export function errorOf(f: () => unknown): MemleakError {
  try {
    f();
  } catch (e) {
    if (e instanceof MemleakError) return e;
    throw e;
  }
  throw new Error('expected a MemleakError, got none');
}
