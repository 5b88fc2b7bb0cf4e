/**
 * Busy machines (issue 12) on samples cut from our own harness recordings (test/scenarios/churn-*,
 * two-leakers; samples/README.md says how): a table refreshed in place beside a real leaker in the
 * same cache (direct kfree, and call_rcu whose free call site is RCU's rcu_do_batch), and two call
 * sites leaking two shapes into one cache. Expected numbers come from the module's ground truth
 * (samples/<name>/expected.json), never from this tool.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { defaultRequest, requestFromRecording } from '../src/request.js';
import type { SlabReport as Report } from '../src/slab/report.js';
import { analyzeAny } from '../src/analyze.js';
import { checkLeak } from '../src/check/leak.js';
import { decideType } from '../src/check/snapshots.js';
import { snapshotFromTexts } from '../src/check/proc.js';
import { renderSysak } from '../src/report/sysak.js';
import { renderText } from '../src/report/text.js';
import { sample, sampleText } from './helpers.js';

interface ChurnExpected {
  cache: string;
  freeMode: string;
  leakers: Record<string, { leaked: number; leakedWhileTracing: number }>;
  tableObjects: number;
  replacing?: { function: string; replacedWhileTracing: number; freedWhileTracing: number; freeSite: string };
}

const expectedOf = (name: string): ChurnExpected => JSON.parse(readFileSync(sample(`${name}/expected.json`), 'utf8'));
const fn = (site: string) => site.split('+')[0];

async function auto(name: string): Promise<Report> {
  const req = requestFromRecording(sample(name), { ...defaultRequest(), scan: { workers: 0 } });
  const r = await analyzeAny(req, 'auto', req.snapshots);
  expect(r.type).toBe('slab');
  return r as Report;
}

describe('replace in place beside a real leaker (one cache)', () => {
  for (const name of ['churn-kfree', 'churn-rcu']) {
    it(`${name}: the refreshing site is replacing (net ~0, 0 marked), the real leaker is named with marked/unfreed >= 0.9`, async () => {
      const exp = expectedOf(name);
      const r = await auto(name);
      const [leaker] = Object.keys(exp.leakers);
      const repl = exp.replacing!;

      const site = r.callSites.find((c) => fn(c.function) === repl.function)!;
      expect(site.marked).toBe(0);
      expect(site.replacingReason).not.toBeNull();
      // every one of its allocations of the window is still outstanding (their frees are of older objects)...
      expect(site.unfreed).toBeGreaterThanOrEqual(0.95 * repl.replacedWhileTracing);
      // ...and looks like the table's cluster, which does not grow
      expect(site.replacing).toBeGreaterThanOrEqual(0.95 * repl.replacedWhileTracing);
      const g = r.clusterGrowth.find((c) => c.rank === site.cluster! + 1)!;
      expect(g.growing).toBe(false);
      expect(Math.abs(g.net)).toBeLessThanOrEqual(0.1 * repl.replacedWhileTracing);
      expect(g.freeSites[0].function.split('+')[0]).toBe(repl.freeSite);
      expect(g.freeSites[0].rcu).toBe(repl.freeSite === 'rcu_do_batch');
      expect(r.unfreed.filter((u) => fn(u.function) === repl.function && u.marked)).toHaveLength(0);

      expect(fn(r.verdict!.function)).toBe(leaker);
      expect(r.verdict!.cache).toBe(exp.cache);
      expect(r.verdict!.marked / r.verdict!.unfreed).toBeGreaterThanOrEqual(0.9);
      expect(r.verdict!.unfreed).toBe(exp.leakers[leaker].leakedWhileTracing);
      expect(r.verdict!.similarObjects).toBe(exp.leakers[leaker].leaked);
      expect(r.verdict!.leakers.map((l) => fn(l.function))).toEqual([leaker]);
      const lg = r.clusterGrowth.find((c) => c.rank === r.verdict!.leakers[0].cluster)!;
      expect(lg.growing).toBe(true);
      expect(lg.frees).toBe(0);

      expect(renderText(r)).toMatch(new RegExp(`Replacing in place, not leaking:\\n  ${repl.function}\\+`));
      // the original's summary: the replacing site is listed with 0 marked
      expect(renderSysak(r)).toMatch(new RegExp(`\\n${site.unfreed}\\s+0\\s+${repl.function}\\+`));
    });
  }
});

describe('--type auto when the check points elsewhere (issue 12, part 3)', () => {
  it('churn-kfree: the check says page (the harness\'s own ring buffer), page names no leaker, so slab is analysed too and names the leaker', async () => {
    const r = await auto('churn-kfree');
    expect(r.check?.leak).toBe('page');
    expect(r.analysed?.map((a) => a.kind)).toEqual(['page', 'slab']);
    expect(r.analysed?.[0].verdict).toBeNull();
    expect(r.analysed?.[1].why).toMatch(/^page found no leaker; slab grew too/);
    expect(fn(r.analysed![1].verdict!)).toBe('churn_conn_add');
  });
});

describe('the standing pile-up (check/pileup.ts) on the recordings\' /proc/slabinfo', () => {
  const snap = (rec: string, when: string) => snapshotFromTexts(sampleText(`${rec}/guest/meminfo.${when}`), sampleText(`${rec}/guest/slabinfo.${when}`), null, { meminfo: 'meminfo', slabinfo: 'slabinfo' });
  it('demo: kmalloc-64 (150401 leaked objects) stands far above every other unreclaimable cache; with no growth to go by, slab is the decision', () => {
    const after = snap('demo-kmalloc64', 'after');
    const c = checkLeak(after, after);
    expect(c.leak).toBeNull();
    expect(c.decision.pileup?.cache).toBe('kmalloc-64');
    expect(c.decision.pileup!.ratio).toBeGreaterThanOrEqual(4);
    expect(c.decision.why).toMatch(/kmalloc-64 holds/);
    expect(decideType('auto', c)).toBe('slab');
  });
  it('sanity-none (nothing leaks): no pile-up', () => {
    const after = snap('sanity-none', 'after');
    expect(checkLeak(after, after).decision.pileup).toBeNull();
  });
});

describe('two call sites leaking two shapes into one cache', () => {
  it('two-leakers: both named in verdict.leakers, each with its own cluster holding its leaked objects, ordered by growth', async () => {
    const exp = expectedOf('two-leakers');
    const r = await auto('two-leakers');
    const leakers = r.verdict!.leakers;
    expect(leakers.map((l) => fn(l.function)).sort()).toEqual(Object.keys(exp.leakers).sort());
    expect(new Set(leakers.map((l) => l.cluster)).size).toBe(2);
    for (const l of leakers) {
      const e = exp.leakers[fn(l.function)];
      expect(l.unfreed).toBe(e.leakedWhileTracing);
      expect(l.marked).toBe(l.unfreed);
      expect(l.similarObjects).toBe(e.leaked); // its cluster is exactly its leaked objects
      expect(l.growth).toBe(l.marked);
      expect(l.words?.length).toBeGreaterThan(0);
    }
    expect(leakers[0].growth).toBeGreaterThanOrEqual(leakers[1].growth);
    // the first keeps the verdict's own keys
    expect(r.verdict!.function).toBe(leakers[0].function);
    expect(r.verdict!.marked).toBe(leakers[0].marked);
    const text = renderText(r);
    for (const l of leakers) expect(text).toContain(`${l.function}: cluster #${l.cluster}`);
    const sysak = renderSysak(r);
    expect(sysak.match(/疑似泄漏函数: /g)).toHaveLength(2);
    expect(sysak).toContain(`疑似泄漏函数: ${leakers[1].function}`);
  });
});

describe('frees the trace does not show (kfree_rcu on 6.1)', () => {
  it('churn-kfree-rcu: most frees are untraced (kfree_bulk), so the refresh still looks like growth; the untouched free slots of its shape put it after the real leaker, flagged', async () => {
    const exp = expectedOf('churn-kfree-rcu');
    const repl = exp.replacing as NonNullable<ChurnExpected['replacing']> & { freeEventsInTrace: number };
    // the premise, from the module's counters and the trace: far fewer free events than frees
    expect(repl.freeEventsInTrace).toBeLessThan(0.5 * repl.freedWhileTracing);
    const r = await auto('churn-kfree-rcu');
    expect(fn(r.verdict!.function)).toBe('churn_conn_add');
    expect(r.verdict!.marked / r.verdict!.unfreed).toBeGreaterThanOrEqual(0.9);
    expect(r.verdict!.unfreed).toBe(exp.leakers.churn_conn_add.leakedWhileTracing);
    const order = r.verdict!.leakers.map((l) => fn(l.function));
    expect(order).toEqual(['churn_conn_add', repl.function]);
    const g = r.clusterGrowth.find((c) => c.rank === r.verdict!.leakers[1].cluster)!;
    expect(g.staleFreeSlots).toBeGreaterThanOrEqual(5);
    expect(g.reason).toMatch(/frees may not be in the trace/);
    expect(r.warnings.some((w) => w.includes(`cluster #${g.rank}`) && w.includes('kfree_rcu'))).toBe(true);
    // the leaker's own cluster has no such slots: a leaked object is never freed
    expect(r.clusterGrowth.find((c) => c.rank === r.verdict!.leakers[0].cluster)!.staleFreeSlots).toBeUndefined();
  });
});
