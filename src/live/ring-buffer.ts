/**
 * Decoder of ftrace ring-buffer pages as `per_cpu/cpuN/trace_pipe_raw` returns them
 * (kernel/trace/ring_buffer.c): a page header (timestamp, commit) and 4-byte-aligned events whose
 * 32-bit header packs type_len:5 and time_delta:27.
 */
import type { PageHeaderFormat } from './event-format.js';

const RINGBUF_TYPE_PADDING = 29;
const RINGBUF_TYPE_TIME_EXTEND = 30;
const RINGBUF_TYPE_TIME_STAMP = 31;
/** Flags the reader finds in the commit field of a page it got (ring_buffer_read_page). */
const RB_MISSED_EVENTS = 2 ** 31;
const RB_MISSED_STORED = 2 ** 30;
const TS_SHIFT = 27;

export interface RawEvent {
  /** Nanoseconds of the trace clock. */
  ts: bigint;
  data: DataView;
}

export interface PageDecode {
  events: RawEvent[];
  /** Events the kernel dropped before this page (overwritten or not stored), if it said. */
  missed: number;
  /** True when the page says events were missed but not how many. */
  missedUnknown: boolean;
}

export function decodePage(page: Uint8Array, hdr: PageHeaderFormat): PageDecode {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  // header_page offsets come from a file: a page they do not fit is an empty page, never a RangeError.
  if (hdr.timestampOffset + 8 > page.length || hdr.commitOffset + hdr.commitSize > page.length || (hdr.commitSize !== 8 && hdr.commitSize !== 4) || hdr.dataOffset > page.length) {
    return { events: [], missed: 0, missedUnknown: false };
  }
  let ts = dv.getBigUint64(hdr.timestampOffset, true);
  const commitRaw = hdr.commitSize === 8 ? Number(dv.getBigUint64(hdr.commitOffset, true) & 0xffffffffn) : dv.getUint32(hdr.commitOffset, true);
  const flagsMissed = commitRaw >= RB_MISSED_EVENTS;
  const stored = (commitRaw % RB_MISSED_EVENTS) >= RB_MISSED_STORED;
  const len = commitRaw % RB_MISSED_STORED;
  const base = hdr.dataOffset;
  const end = Math.min(base + len, page.length);
  const events: RawEvent[] = [];
  let missed = 0;
  if (stored && end + 8 <= page.length) missed = Number(dv.getBigUint64(end, true));
  let pos = base;
  while (pos + 4 <= end) {
    const h = dv.getUint32(pos, true);
    const typeLen = h & 0x1f;
    const delta = BigInt(h >>> 5);
    // Every header kind but a small data event has a second word; a page cut there ends here.
    if ((typeLen === 0 || typeLen >= RINGBUF_TYPE_PADDING) && pos + 8 > end) break;
    if (typeLen === RINGBUF_TYPE_PADDING) {
      if (delta === 0n) break; // the rest of the page is padding
      pos += 4 + dv.getUint32(pos + 4, true);
      continue;
    }
    if (typeLen === RINGBUF_TYPE_TIME_EXTEND) {
      ts += (BigInt(dv.getUint32(pos + 4, true)) << BigInt(TS_SHIFT)) + delta;
      pos += 8;
      continue;
    }
    if (typeLen === RINGBUF_TYPE_TIME_STAMP) {
      const abs = (BigInt(dv.getUint32(pos + 4, true)) << BigInt(TS_SHIFT)) + delta;
      // Absolute stamps carry the low 59 bits; the page's stamp gives the rest.
      ts = (ts & ~((1n << 59n) - 1n)) | abs;
      pos += 8;
      continue;
    }
    ts += delta;
    let dataStart: number;
    let dataLen: number;
    if (typeLen === 0) {
      const l = dv.getUint32(pos + 4, true);
      dataStart = pos + 8;
      dataLen = l - 4;
      pos += 4 + l;
    } else {
      dataStart = pos + 4;
      dataLen = typeLen * 4;
      pos += 4 + dataLen;
    }
    if (dataLen <= 0 || dataStart + dataLen > end) break;
    events.push({ ts, data: new DataView(page.buffer, page.byteOffset + dataStart, dataLen) });
  }
  return { events, missed, missedUnknown: flagsMissed && !stored };
}
