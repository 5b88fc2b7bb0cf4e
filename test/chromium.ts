/**
 * Headless Chromium (Debian's /usr/bin/chromium; CHROMIUM= overrides) driven over the DevTools protocol
 * on --remote-debugging-pipe: no driver package, nothing downloaded. It loads a page and reports every
 * console error, uncaught exception and log error (blocked requests, CSP violations), evaluates probes
 * in the page, and writes a full-page screenshot and a PDF (print CSS) on request.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function chromiumMissing(): string | null {
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM=)`;
}

export interface PageResult {
  errors: string[];
  probes: Record<string, unknown>;
}

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, any>;
  result?: Record<string, any>;
  error?: { message: string };
  sessionId?: string;
}

export interface Chromium {
  /** Loads a page in a fresh tab; errors are everything the page reported while loading. */
  load(url: string, opts?: { probes?: Record<string, string>; screenshot?: string; tileHeight?: number; pdf?: string; width?: number }): Promise<PageResult>;
  close(): Promise<void>;
}

export async function openChromium(): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), 'sysak-chromium-'));
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'];
  const proc = spawn(CHROMIUM, flags, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const toChrome = proc.stdio[3] as Writable;
  const fromChrome = proc.stdio[4] as Readable;
  const pending = new Map<number, { ok: (r: Record<string, any>) => void; fail: (e: Error) => void }>();
  const listeners = new Set<(m: Message) => void>();
  let nextId = 1;
  let buf = '';
  fromChrome.setEncoding('utf8');
  fromChrome.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\0')) >= 0) {
      const m = JSON.parse(buf.slice(0, i)) as Message;
      buf = buf.slice(i + 1);
      if (m.id !== undefined && pending.has(m.id)) {
        const p = pending.get(m.id)!;
        pending.delete(m.id);
        if (m.error) p.fail(new Error(m.error.message));
        else p.ok(m.result ?? {});
      } else for (const l of listeners) l(m);
    }
  });
  const exited = new Promise<void>((ok) => proc.on('exit', () => ok()));
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Record<string, any>>((ok, fail) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return fail(new Error(`Chromium exited before ${method}`));
      const id = nextId++;
      pending.set(id, { ok, fail });
      toChrome.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  exited.then(() => {
    for (const p of pending.values()) p.fail(new Error('Chromium exited'));
    pending.clear();
  });

  async function load(url: string, opts: Parameters<Chromium['load']>[1] = {}): Promise<PageResult> {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const s = (method: string, params: Record<string, unknown> = {}) => send(method, params, sessionId);
    const errors: string[] = [];
    let loaded!: () => void;
    const onLoad = new Promise<void>((ok) => (loaded = ok));
    const listener = (m: Message) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.consoleAPICalled' && (m.params!.type === 'error' || m.params!.type === 'assert')) errors.push(`console.${m.params!.type}: ${m.params!.args.map((a: any) => a.value ?? a.description).join(' ')}`);
      if (m.method === 'Runtime.exceptionThrown') errors.push(`exception: ${m.params!.exceptionDetails.exception?.description ?? m.params!.exceptionDetails.text}`);
      if (m.method === 'Log.entryAdded' && m.params!.entry.level === 'error') errors.push(`${m.params!.entry.source}: ${m.params!.entry.text}${m.params!.entry.url ? ` (${m.params!.entry.url})` : ''}`);
      if (m.method === 'Page.loadEventFired') loaded();
    };
    listeners.add(listener);
    try {
      await Promise.all([s('Runtime.enable'), s('Log.enable'), s('Page.enable')]);
      await s('Emulation.setDeviceMetricsOverride', { width: opts.width ?? 1100, height: 900, deviceScaleFactor: 1, mobile: false });
      await s('Page.navigate', { url });
      await onLoad;
      const probes: Record<string, unknown> = {};
      for (const [name, expr] of Object.entries(opts.probes ?? {})) {
        const r = await s('Runtime.evaluate', { expression: expr, returnByValue: true });
        probes[name] = r.exceptionDetails ? `exception: ${r.exceptionDetails.text}` : r.result.value;
      }
      if (opts.screenshot) {
        const { cssContentSize: size } = await s('Page.getLayoutMetrics');
        const clip = { x: 0, y: 0, width: Math.ceil(size.width), height: Math.ceil(size.height), scale: 1 };
        const { data } = await s('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip });
        writeFileSync(opts.screenshot, Buffer.from(data, 'base64'));
        // Tiles of a long page, for a person (or an image viewer) that cannot take one tall picture.
        for (let y = 0, n = 1; opts.tileHeight && y < clip.height; y += opts.tileHeight, n++) {
          const tile = { ...clip, y, height: Math.min(opts.tileHeight, clip.height - y) };
          const t = await s('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip: tile });
          writeFileSync(opts.screenshot.replace(/\.png$/, `.${n}.png`), Buffer.from(t.data, 'base64'));
        }
      }
      if (opts.pdf) {
        const { data } = await s('Page.printToPDF', { printBackground: false, preferCSSPageSize: true });
        writeFileSync(opts.pdf, Buffer.from(data, 'base64'));
      }
      // Late log entries (a blocked request after load) arrive within a moment.
      await new Promise((r) => setTimeout(r, 200));
      return { errors, probes };
    } finally {
      listeners.delete(listener);
      await send('Target.closeTarget', { targetId }).catch(() => undefined);
    }
  }

  async function close(): Promise<void> {
    // A graceful close lets the helper processes finish writing the profile before it is removed.
    send('Browser.close').catch(() => undefined);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    proc.kill('SIGKILL');
    await exited;
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch {
      // a helper process still writing into the temporary profile: it is left in TMPDIR
    }
  }

  return { load, close };
}
