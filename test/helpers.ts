import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SAMPLES = join(ROOT, 'samples');

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
