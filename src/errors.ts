/**
 * Errors as data. Everything the library rejects is a MemleakError with a stable `code`; the CLI maps
 * codes to exit statuses in one place (cli/exit.ts). Errors that cross a worker boundary travel as the
 * plain `{code, message, context}` object returned by toPlain().
 */
export type ErrorCode =
  | 'E_USAGE' // the command line is inconsistent
  | 'E_IO' // a file cannot be opened or read
  | 'E_FORMAT' // a file is none of the formats we read, or a line of it is malformed
  | 'E_GEOMETRY' // object/slab sizes are missing or inconsistent
  | 'E_KALLSYMS' // kallsyms empty, restricted, or not the kernel of the other inputs
  | 'E_TRACE' // the trace cannot be used (hashed pointers, wrong kernel)
  | 'E_NO_DATA' // nothing to analyse (no objects, no pages)
  | 'E_WORKER' // a scan worker failed
  | 'E_PERMISSION' // live mode needs root, and no lockdown of kcore/tracefs
  | 'E_LIVE' // tracefs or /proc/kcore do not work as needed
  | 'E_INTERRUPTED' // SIGINT/SIGTERM during a live run (after cleanup)
  | 'E_INTERNAL';

export interface ErrorContext {
  file?: string;
  line?: number;
  offset?: number;
  [key: string]: unknown;
}

export interface PlainError {
  code: ErrorCode;
  message: string;
  context: ErrorContext;
}

export class MemleakError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message);
    this.name = 'MemleakError';
    this.code = code;
    this.context = context;
  }

  /** "file:line: message" — the one line a user sees. */
  where(): string {
    const { file, line, offset } = this.context;
    let at = file ?? '';
    if (file !== undefined && line !== undefined) at += `:${line}`;
    if (offset !== undefined) at += `${at ? ' ' : ''}at offset ${offset} (0x${offset.toString(16)})`;
    return at ? `${at}: ${this.message}` : this.message;
  }

  toPlain(): PlainError {
    return { code: this.code, message: this.message, context: this.context };
  }

  static fromPlain(p: PlainError): MemleakError {
    return new MemleakError(p.code, p.message, p.context);
  }
}

export function isPlainError(x: unknown): x is PlainError {
  return typeof x === 'object' && x !== null && typeof (x as PlainError).code === 'string' &&
    typeof (x as PlainError).message === 'string';
}
