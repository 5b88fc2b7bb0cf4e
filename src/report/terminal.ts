/**
 * The text report as a terminal shows it. Renderers write plain text (what pipes, files and tests
 * get, byte for byte); on a TTY this adds colour -- never under NO_COLOR (no-color.org: set and not
 * empty) or TERM=dumb -- and fits long lines to the terminal's width: a table row wraps with its
 * continuation under its last column (the function name), other lines under their own indent.
 * Nothing is cut: a terminal shows all the pipe would.
 */

export interface Terminal {
  color: boolean;
  /** Columns, when writing to a terminal that says. */
  width: number | null;
}

export const PLAIN: Terminal = { color: false, width: null };

export function terminalOf(stream: { isTTY?: boolean; columns?: number }, env: NodeJS.ProcessEnv = process.env): Terminal {
  if (stream.isTTY !== true) return PLAIN;
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return { color: !noColor && env.TERM !== 'dumb', width: stream.columns && stream.columns >= 40 ? stream.columns : null };
}

const sgr = (open: number, close: number) => (t: string) => `\x1b[${open}m${t}\x1b[${close}m`;
const bold = sgr(1, 22);
const red = (t: string) => bold(sgr(31, 39)(t));
const green = sgr(32, 39);
const yellow = sgr(33, 39);

/** Where the continuation of an over-long line starts: under its last column, else its indent + 4. */
function hangingIndent(line: string, width: number): number {
  const indent = line.length - line.trimStart().length;
  let col = -1;
  for (const m of line.slice(0, width).matchAll(/\S {2,}(?=\S)/g)) col = m.index! + m[0].length;
  return col > indent && col <= width / 2 ? col : Math.min(indent + 4, Math.floor(width / 2));
}

export function wrapLine(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const hang = hangingIndent(line, width);
  const out: string[] = [];
  let rest = line;
  let prefix = '';
  while (prefix.length + rest.length > width) {
    const room = width - prefix.length;
    // Break at the last space that leaves something on this line; a long path or symbol breaks hard.
    let cut = rest.lastIndexOf(' ', room);
    if (cut <= rest.length - rest.trimStart().length) cut = room;
    out.push((prefix + rest.slice(0, cut)).trimEnd());
    rest = rest.slice(cut).trimStart();
    prefix = ' '.repeat(hang);
  }
  out.push(prefix + rest);
  return out;
}

function colorLine(line: string): string {
  if (/^Verdict: (slab|vmalloc|page) leak\b/.test(line)) return red(line);
  if (/^Verdict: none\b/.test(line)) return bold(line);
  if (/^Warnings:$/.test(line)) return bold(yellow(line));
  if (/^conclusion: /.test(line)) return line.includes('no memleak') ? bold(green(line)) : red(line);
  // Headings: unindented lines that end a clause with ':' (sections), and the report's first line.
  if (/^(sysak memleak: |Leaking call sites|Kinds analysed)/.test(line) || /^[A-Z][^:]*:$/.test(line)) return bold(line);
  return line.replace(/\b(LEAKING|GROWS)\b/g, (w) => red(w)).replace(/\breplaced in place\b/g, (w) => green(w));
}

/** The plain report as this terminal should show it (unchanged for pipes and files). */
export function forTerminal(text: string, t: Terminal): string {
  if (!t.color && t.width === null) return text;
  const lines = text.split('\n');
  const out: string[] = [];
  for (const line of lines) {
    for (const part of t.width ? wrapLine(line, t.width) : [line]) out.push(t.color ? colorLine(part) : part);
  }
  return out.join('\n');
}
