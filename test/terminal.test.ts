/**
 * Text output where it lands: plain in pipes and files; on a terminal, colour (not under NO_COLOR or
 * TERM=dumb) and lines fitted to its width without losing a character. The terminal case runs the CLI
 * under a real pseudo-terminal (util-linux `script`).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { EXIT } from '../src/cli/exit.js';
import { forTerminal, PLAIN, terminalOf, wrapLine } from '../src/report/terminal.js';
import { ROOT, sample } from './helpers.js';

const BIN = join(ROOT, 'dist/src/cli/main.js');
const ESC = '\x1b[';
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
/** The report's characters without layout (and elapsed times, which differ between runs). */
const letters = (s: string) => strip(s).replace(/\b\d+ ms\b/g, 'N ms').replace(/\s+/g, '');

function viaPipe(args: string[]) {
  return spawnSync(process.execPath, [BIN, 'memleak', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '' } });
}

/** The CLI on a pseudo-terminal of `cols` columns; the pty turns \n into \r\n. */
function viaTty(args: string[], cols: number, env: Record<string, string> = {}) {
  const cmd = `stty cols ${cols}; exec ${[process.execPath, BIN, 'memleak', ...args].map((a) => `'${a}'`).join(' ')}`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', TERM: 'xterm', ...env } });
  return { status: r.status, out: r.stdout.replace(/\r\n/g, '\n') };
}

const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;

describe('terminal output', () => {
  it('colour only on a TTY, never under NO_COLOR (set, not empty) or TERM=dumb; width only from a TTY', () => {
    expect(terminalOf({ isTTY: false, columns: 80 }, {})).toEqual(PLAIN);
    expect(terminalOf({ columns: 80 }, {})).toEqual(PLAIN);
    expect(terminalOf({ isTTY: true, columns: 100 }, {})).toEqual({ color: true, width: 100 });
    expect(terminalOf({ isTTY: true, columns: 100 }, { NO_COLOR: '1' })).toEqual({ color: false, width: 100 });
    expect(terminalOf({ isTTY: true, columns: 100 }, { NO_COLOR: '' }).color).toBe(true);
    expect(terminalOf({ isTTY: true, columns: 100 }, { TERM: 'dumb' }).color).toBe(false);
  });

  it('a long table row wraps under its last column; a long token breaks hard; nothing is lost', () => {
    const row = '      401      401  some_really_long_function_name+0x24/0x140 [a_module_with_a_long_name]';
    const lines = wrapLine(row, 60);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(60);
    expect(lines[1].startsWith(' '.repeat(row.indexOf('some_')))).toBe(true);
    expect(letters(lines.join(' '))).toBe(letters(row));
    const path = `Trace /${'x'.repeat(150)}/trace.txt: 10 events`;
    for (const l of wrapLine(path, 50)) expect(l.length).toBeLessThanOrEqual(50);
    expect(letters(wrapLine(path, 50).join(''))).toBe(letters(path));
  });

  it('pipes get the plain report, byte for byte what the renderers wrote', () => {
    const r = viaPipe(['--from', sample('two-leakers')]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain(ESC);
    expect(forTerminal(r.stdout, PLAIN)).toBe(r.stdout);
  });

  it.skipIf(!hasScript)('on a 72-column terminal: coloured verdict, every line fits, the same words as the pipe', () => {
    const piped = viaPipe(['--from', sample('two-leakers')]).stdout;
    // --quiet: on a terminal a phase over 2 s (a loaded machine) draws a progress line on stderr, which
    // script(1) mixes into the same output; the report is what this test reads.
    const tty = viaTty(['--from', sample('two-leakers'), '--quiet'], 72);
    expect(tty.status).toBe(0);
    expect(tty.out).toMatch(/\x1b\[1m\x1b\[31mVerdict: slab leak in kmalloc-64 by churn_conn_add/);
    expect(tty.out).toMatch(/\x1b\[1m\x1b\[31mGROWS/);
    for (const l of strip(tty.out).split('\n')) expect(l.length).toBeLessThanOrEqual(72);
    expect(letters(tty.out)).toBe(letters(piped));
    const noColor = viaTty(['--from', sample('two-leakers'), '--quiet'], 72, { NO_COLOR: '1' });
    expect(noColor.out).not.toContain(ESC);
    expect(letters(noColor.out)).toBe(letters(piped));
    // JSON is data: never styled or wrapped, terminal or not.
    const json = viaTty(['--from', sample('two-leakers'), '--json'], 72);
    expect(json.out).not.toContain(ESC);
    expect(JSON.parse(json.out).verdict.function).toBe('churn_conn_add+0x24/0x120 [churn]');
  });

  it('--help ends with worked examples of each flow and every exit code', () => {
    const r = spawnSync(process.execPath, [BIN, 'memleak', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const tail = r.stdout.slice(r.stdout.indexOf('\nExamples:\n'));
    expect(tail.length).toBeGreaterThan(20);
    for (const flow of [/sysak memleak --duration \d+/, /sysak memleak -c\b/, /--vmcore \S+/, /--rd \S+ --kmem \S+/, /--from \S+/, /--html \S+/]) expect(tail).toMatch(flow);
    const codes = tail.slice(tail.indexOf('Exit codes:'));
    for (const n of new Set([0, ...Object.values(EXIT)])) expect(codes).toMatch(new RegExp(`^ +${n}  \\S`, 'm'));
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/^ +\d+  /);
  });
});
