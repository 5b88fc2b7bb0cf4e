/**
 * `--html`: the page of every sample (and of a live --save directory) written by the CLI next to its
 * --json, then opened in real headless Chromium: no console errors, no requests, the verdict, the
 * memory chart and the clusters (or callers) in the DOM. Screenshots and print PDFs go to
 * test-artifacts/html/ (git-ignored) for a person to look at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SAMPLES } from './helpers.js';
import { chromiumMissing, openChromium, type Chromium } from './chromium.js';
import { renderCheckHtml } from '../src/report/html.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');
const OUT = join(ROOT, 'test-artifacts', 'html');

/** Every recording among the samples, and a live --save directory (per-second usage samples) from the guest. */
const inputs: [string, string][] = [
  ...readdirSync(SAMPLES).filter((d) => statSync(join(SAMPLES, d)).isDirectory()).map((d): [string, string] => [d, join(SAMPLES, d)]),
  ['live-save-demo', join(ROOT, 'test', 'fixtures', 'live-save-demo')],
];

const why = chromiumMissing();

const PROBES = {
  verdict: 'document.querySelector("#verdict")?.innerText ?? null',
  memoryCharts: 'document.querySelectorAll("#memory svg.chart").length',
  seriesLines: 'document.querySelectorAll("#memory svg.chart polyline").length',
  leakingPanels: '[...document.querySelectorAll("#memory svg.panel.emphasis .ptitle")].map((e) => e.textContent)',
  clusterBars: 'document.querySelectorAll("#clusters svg.bars rect").length',
  clusterBlocks: 'document.querySelectorAll("#clusters .cluster").length',
  callerBars: 'document.querySelectorAll("#callsites svg.bars rect").length',
  timeline: 'document.querySelectorAll("#trace svg.timeline").length',
  embedded: 'document.querySelector("#sysak-report").textContent',
  external: '[...document.querySelectorAll("script[src], link[href], img[src], iframe")].length',
  resources: 'performance.getEntriesByType("resource").length',
};

describe.skipIf(why !== null)(`--html in headless Chromium (${why ?? 'chromium available'})`, () => {
  let browser: Chromium;
  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await openChromium();
  }, 60_000);
  afterAll(async () => browser?.close());

  it('the checker itself sees console errors and blocked requests', async () => {
    const bad = join(OUT, 'checker-negative.html');
    writeFileSync(bad, '<!DOCTYPE html><title>x</title><script>console.error("boom")</script><script src="https://example.invalid/x.js"></script>');
    const r = await browser.load(pathToFileURL(bad).href);
    expect(r.errors.some((e) => e.includes('boom'))).toBe(true);
    expect(r.errors.length).toBeGreaterThan(1);
  });

  it('-c: the check-only page (conclusion and the per-second memory) loads cleanly', async () => {
    const run = spawnSync(process.execPath, [BIN, 'memleak', '--from', join(ROOT, 'test', 'fixtures', 'live-save-demo'), '--json'], { cwd: ROOT, encoding: 'utf8' });
    const check = JSON.parse(run.stdout).check;
    const html = join(OUT, 'check-only.html');
    writeFileSync(html, renderCheckHtml(check, 'test'));
    const r = await browser.load(pathToFileURL(html).href, { probes: PROBES, screenshot: join(OUT, 'check-only.png') });
    expect(r.errors).toEqual([]);
    const p = r.probes as Record<string, any>;
    expect(p.verdict.split('\n')[0]).toBe(check.leak ? `Check: ${check.leak === 'page' ? 'alloc page' : check.leak} memleak` : 'Check: no memleak');
    expect(p.seriesLines).toBe(3);
    expect(JSON.parse(p.embedded)).toEqual({ schema: 'sysak-memleak-check/1', check });
  });

  for (const [name, dir] of inputs) {
    it(`${name}: the page loads cleanly with the verdict, the memory chart and the clusters`, async () => {
      expect(existsSync(dir), `${dir} is missing`).toBe(true);
      const html = join(OUT, `${name}.html`);
      const run = spawnSync(process.execPath, [BIN, 'memleak', '--from', dir, '--json', '--html', html], { cwd: ROOT, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const report = JSON.parse(run.stdout);
      const text = readFileSync(html, 'utf8');
      // Self-contained: nothing to fetch, and a CSP that would block it anyway.
      expect(text).not.toMatch(/<(script|img|iframe)[^>]+src=|<link[^>]+href=|@import|url\(\s*['"]?(https?:|\/\/)/i);
      expect(text).toMatch(/Content-Security-Policy" content="default-src 'none'/);

      const r = await browser.load(pathToFileURL(html).href, { probes: PROBES, screenshot: join(OUT, `${name}.png`), pdf: join(OUT, `${name}.pdf`) });
      expect(r.errors).toEqual([]);
      const p = r.probes as Record<string, any>;
      expect(p.resources).toBe(0);
      expect(p.external).toBe(0);
      // Rendered from the report: the page carries exactly the JSON the same run printed.
      expect(JSON.parse(p.embedded)).toEqual(report);

      const v = report.verdict;
      if (v) {
        expect(p.verdict).toContain(`${v.type} leak`);
        expect(p.verdict).toContain(v.function);
        if (v.type === 'slab') expect(p.verdict).toMatch(new RegExp(`${v.marked} of ${v.unfreed} unfreed`));
      } else {
        expect(p.verdict).toMatch(/^No leak named/);
        expect(p.verdict).toContain(report.verdictReason);
      }

      const check = report.check ?? report.live?.check ?? null;
      expect(p.memoryCharts).toBeGreaterThan(0);
      if (check) {
        expect(p.memoryCharts).toBe(3);
        const leak = v ? report.type : check.leak;
        if (leak) expect(p.leakingPanels).toEqual([expect.stringMatching(/LEAKING$/)]);
        expect(p.seriesLines).toBe(check.series ? 3 : 0);
        if (name === 'live-save-demo') expect(check.series.t.length).toBeGreaterThan(10);
      }

      if (report.type === 'slab') {
        expect(p.clusterBlocks).toBe(report.clusters.length);
        expect(p.clusterBars).toBe(report.clusters.length);
        if (report.trace) expect(p.timeline).toBe(1);
      } else {
        expect(p.callerBars).toBeGreaterThan(0);
        if (report.type === 'page' && report.trace) expect(p.timeline).toBe(1);
      }
    });
  }
});
