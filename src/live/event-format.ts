/**
 * tracefs `format` files (kernel/trace/trace_events.c): the binary layout of each event, and
 * `events/header_page` for the ring-buffer page header. Pointers in the binary records are raw even
 * where the text output hashes them.
 */
import { MemleakError } from '../errors.js';

export interface FieldFormat {
  name: string;
  offset: number;
  size: number;
  signed: boolean;
}

export interface EventFormat {
  system: string;
  name: string;
  id: number;
  fields: Map<string, FieldFormat>;
}

const FIELD = /^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(\d);)?/;

export function parseEventFormat(text: string, system: string, file: string): EventFormat {
  let name = '';
  let id = -1;
  const fields = new Map<string, FieldFormat>();
  for (const line of text.split('\n')) {
    if (line.startsWith('name: ')) name = line.slice(6).trim();
    else if (line.startsWith('ID: ')) id = Number(line.slice(4));
    else {
      const m = FIELD.exec(line);
      if (!m) continue;
      // "unsigned long call_site", "const void * ptr", "__data_loc char[] name", "char comm[16]"
      const decl = m[1].trim().replace(/\[\d*\]$/, '');
      const fname = /([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\d*\])?$/.exec(decl)?.[1] ?? decl;
      fields.set(fname, { name: fname, offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' });
    }
  }
  if (!name || id < 0) throw new MemleakError('E_FORMAT', 'not a tracefs event format file (no name:/ID:)', { file });
  return { system, name, id, fields };
}

export interface PageHeaderFormat {
  timestampOffset: number;
  commitOffset: number;
  commitSize: number;
  dataOffset: number;
}

/** events/header_page: `field: u64 timestamp; offset:0; size:8; ...` */
export function parseHeaderPage(text: string, file: string): PageHeaderFormat {
  const get = (n: string) => {
    const m = new RegExp(`field:[^;]*\\b${n};\\s*offset:(\\d+);\\s*size:(\\d+);`).exec(text);
    return m ? { offset: Number(m[1]), size: Number(m[2]) } : null;
  };
  const ts = get('timestamp');
  const commit = get('commit');
  const data = get('data');
  if (!ts || !commit || !data) throw new MemleakError('E_FORMAT', 'events/header_page lacks timestamp/commit/data', { file });
  return { timestampOffset: ts.offset, commitOffset: commit.offset, commitSize: commit.size, dataOffset: data.offset };
}
