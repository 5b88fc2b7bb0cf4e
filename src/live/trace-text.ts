/**
 * Binary kmem events -> the ftrace text lines the offline parser reads (raw pointers, `%pS` call
 * sites). Writing the live trace in the offline format is what makes `--save DIR` then `--from DIR`
 * replay the same analysis.
 */
import * as fs from 'node:fs';
import { Kallsyms } from '../kernel/kallsyms.js';
import type { EventFormat } from './event-format.js';
import type { RawEvent } from './ring-buffer.js';

export interface DecodedEvent {
  ts: bigint;
  cpu: number;
  line: string;
}

function u(dv: DataView, f: { offset: number; size: number; signed: boolean } | undefined): bigint {
  if (!f || f.offset + f.size > dv.byteLength) return 0n;
  switch (f.size) {
    case 8: return f.signed ? dv.getBigInt64(f.offset, true) : dv.getBigUint64(f.offset, true);
    case 4: return BigInt(f.signed ? dv.getInt32(f.offset, true) : dv.getUint32(f.offset, true));
    case 2: return BigInt(dv.getUint16(f.offset, true));
    default: return BigInt(dv.getUint8(f.offset));
  }
}

export function formatTs(ns: bigint): string {
  const us = ns / 1000n;
  return `${us / 1000000n}.${(us % 1000000n).toString().padStart(6, '0')}`;
}

export class EventTextWriter {
  private readonly byId = new Map<number, EventFormat>();
  private readonly comms = new Map<number, string>();
  events = 0;

  constructor(formats: EventFormat[], private readonly ks: Kallsyms, private readonly procRoot = '/proc') {
    for (const f of formats) this.byId.set(f.id, f);
  }

  private comm(pid: number): string {
    if (pid === 0) return '<idle>';
    let c = this.comms.get(pid);
    if (c === undefined) {
      try {
        c = fs.readFileSync(`${this.procRoot}/${pid}/comm`, 'utf8').trim().replace(/\s/g, '_') || '<...>';
      } catch {
        c = '<...>'; // the task is gone; ftrace prints the same when its comm cache misses
      }
      this.comms.set(pid, c);
    }
    return c;
  }

  private site(addr: bigint): string {
    const s = this.ks.lookup(addr);
    return s ? Kallsyms.format(s) : addr.toString(16).padStart(16, '0');
  }

  /** One text line, or null for an event id we did not enable. */
  line(cpu: number, e: RawEvent): string | null {
    const dv = e.data;
    const id = dv.getUint16(0, true);
    const fmt = this.byId.get(id);
    if (!fmt) return null;
    const F = fmt.fields;
    const pid = Number(u(dv, F.get('common_pid')));
    const prefix = `${this.comm(pid)}-${pid} [${cpu.toString().padStart(3, '0')}] ..... ${formatTs(e.ts)}: `;
    if (fmt.name === 'kernel_stack') {
      // ftrace's stack entry (kernel/trace/trace_entries.h): int size, then `size` return addresses.
      const n = Number(u(dv, F.get('size')));
      const at = F.get('caller')?.offset ?? 16;
      const frames: string[] = [];
      for (let i = 0; i < n && at + i * 8 + 8 <= dv.byteLength; i++) {
        const a = dv.getBigUint64(at + i * 8, true);
        if (a === 0n || a === 0xffffffffffffffffn) break;
        frames.push(` => ${this.site(a)}`);
      }
      return [`${prefix}<stack trace>`, ...frames].join('\n');
    }
    const head = `${prefix}${fmt.name}: `;
    const hex = (n: string) => u(dv, F.get(n)).toString(16).padStart(16, '0');
    let body: string;
    if (fmt.name === 'kfree') body = `call_site=${this.site(u(dv, F.get('call_site')))} ptr=${hex('ptr')}`;
    else if (fmt.name === 'kmem_cache_free') {
      let name = '';
      const loc = F.get('name');
      if (loc && loc.size === 4) {
        const v = dv.getUint32(loc.offset, true);
        const off = v & 0xffff;
        const len = v >>> 16;
        if (off + len <= dv.byteLength) name = new TextDecoder().decode(new Uint8Array(dv.buffer, dv.byteOffset + off, len)).replace(/\0.*$/, '');
      }
      body = `call_site=${this.site(u(dv, F.get('call_site')))} ptr=${hex('ptr')}${loc ? ` name=${name}` : ''}`;
    } else if (fmt.name === 'mm_page_alloc' || fmt.name === 'mm_page_free') {
      body = `page=0 pfn=0x${u(dv, F.get('pfn')).toString(16)} order=${u(dv, F.get('order'))}${F.has('migratetype') ? ` migratetype=${u(dv, F.get('migratetype'))}` : ''}${F.has('gfp_flags') ? ` gfp_flags=0x${u(dv, F.get('gfp_flags')).toString(16)}` : ''}`;
    } else {
      body = `call_site=${this.site(u(dv, F.get('call_site')))} ptr=${hex('ptr')} bytes_req=${u(dv, F.get('bytes_req'))} bytes_alloc=${u(dv, F.get('bytes_alloc'))} gfp_flags=0x${u(dv, F.get('gfp_flags')).toString(16)} node=${u(dv, F.get('node'))}`;
    }
    this.events++;
    return head + body;
  }
}
