/** The one place where errors become exit codes and a single line on stderr. */
import type { CommanderError } from 'commander';
import { MemleakError, type ErrorCode } from '../errors.js';

export const EXIT: Record<ErrorCode, number> = {
  E_USAGE: 2,
  E_IO: 3,
  E_FORMAT: 4,
  E_GEOMETRY: 4,
  E_KALLSYMS: 4,
  E_TRACE: 4,
  E_NO_DATA: 5,
  E_PERMISSION: 77, // EX_NOPERM
  E_LIVE: 6,
  E_INTERRUPTED: 130, // 128 + SIGINT, as a shell reports it
  E_WORKER: 70,
  E_INTERNAL: 70,
};

export function reportError(e: unknown): number {
  if (e instanceof MemleakError) {
    process.stderr.write(`sysak memleak: ${e.where()}\n`);
    return EXIT[e.code];
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`sysak memleak: internal error: ${msg} (set SYSAK_DEBUG=1 for a stack trace)\n`);
  if (process.env.SYSAK_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return 70;
}

/**
 * commander's own exits: --help and --version are success (it printed them); every parse error
 * (unknown option, bad value, missing argument) is a usage error: one line, exit 2, never the help.
 */
export function reportCommanderExit(e: CommanderError): number {
  if (e.exitCode === 0) return 0;
  // `sysak` without a command: commander printed the help to stderr; that is a usage error.
  if (e.code === 'commander.help') return EXIT.E_USAGE;
  // "option '--top <n>' argument '1e3' is invalid. --top must be ...": our reason says it all.
  const msg = e.message.replace(/^error: /, '').split('\n')[0].replace(/^option '[^']*' argument '.*' is invalid\. /, '');
  return reportError(new MemleakError('E_USAGE', `${msg} (see sysak memleak --help)`));
}
