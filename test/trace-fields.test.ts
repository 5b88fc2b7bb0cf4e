/**
 * The trace's `key=value` fields are cut by hand (src/trace/ftrace.ts parseFields, run for every
 * event); it must cut exactly what the regex it replaced cut, on real lines and on any text.
 */
import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { parseFields } from '../src/trace/ftrace.js';
import { sampleText } from './helpers.js';

/** The regex form this replaced (kept here as the specification). */
function reference(s: string): Map<string, string> {
  const FIELD = /(?:^|\s)([a-z_]+)=/g;
  const FIELDS_VALUE = /^(\S*?)\s*\((-?\d+)\)$/;
  const out = new Map<string, string>();
  const keys: { k: string; start: number; end: number }[] = [];
  let m: RegExpExecArray | null;
  while ((m = FIELD.exec(s)) !== null) keys.push({ k: m[1], start: m.index, end: m.index + m[0].length });
  for (let i = 0; i < keys.length; i++) {
    let v = s.slice(keys[i].end, i + 1 < keys.length ? keys[i + 1].start : s.length).trim();
    const f = FIELDS_VALUE.exec(v);
    if (f) v = f[1] === '' ? f[2] : f[1];
    out.set(keys[i].k, v);
  }
  return out;
}

const same = (s: string) => expect([...parseFields(s)]).toEqual([...reference(s)]);

describe('trace fields', () => {
  it('cuts every event line of a recorded trace as the regex does', () => {
    const text = sampleText('demo-kmalloc64/guest/trace.txt.gz');
    let n = 0;
    for (const line of text.split('\n')) {
      const body = line.replace(/^.*?: \w+: /, '');
      same(body);
      n++;
    }
    expect(n).toBeGreaterThan(1000);
  });

  it('cuts options/fields, perf and odd spacing as the regex does', () => {
    for (const s of [
      'call_site=kmalloc_trace+0x2a/0x90 ptr=0xffff9e0e8571e000 (-107689771147264) bytes_req=0x28 (40) accounted=(0)',
      ' ptr=          (null)',
      'ptr=ffff=1 a= b=c\tname=kmalloc-64  ',
      '\u00a0x=1\u2028y=2 z==3 _=4 A=5 a-b=6',
      'noequals here',
      '=x y=',
    ]) same(s);
  });

  test.prop([fc.stringMatching(/^[a-z_= ()0-9x\t\-\u00a0A]{0,40}$/)], { numRuns: 3000 })('cuts any text as the regex does', (s) => {
    same(s);
  });
  test.prop([fc.string({ maxLength: 30 })], { numRuns: 1000 })('cuts any string as the regex does', (s) => {
    same(s);
  });
});
