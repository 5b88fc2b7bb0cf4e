/**
 * A private ftrace instance (`instances/NAME`): everything we set (events, filters, buffer size,
 * clock) lives inside it, so removing the instance restores the kernel's tracing state exactly;
 * the top-level buffer and other users' instances are never written.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { MemleakError } from '../errors.js';
import { parseEventFormat, parseHeaderPage, type EventFormat, type PageHeaderFormat } from './event-format.js';

export function findTracefs(): string {
  let mounts = '';
  try {
    mounts = fs.readFileSync('/proc/mounts', 'utf8');
  } catch {
    /* fall through to the usual paths */
  }
  const fromMounts = mounts.split('\n').map((l) => l.split(' ')).filter((f) => f[2] === 'tracefs').map((f) => f[1]);
  for (const p of [...fromMounts, '/sys/kernel/tracing', '/sys/kernel/debug/tracing']) {
    if (fs.existsSync(join(p, 'instances'))) return p;
  }
  throw new MemleakError('E_LIVE', 'tracefs is not mounted: mount it with `mount -t tracefs nodev /sys/kernel/tracing`', { file: '/sys/kernel/tracing' });
}

/** What a run must leave as it found it (compared by the live tests before and after). */
export function tracefsState(root: string): Record<string, string> {
  const read = (f: string) => {
    try {
      return fs.readFileSync(join(root, f), 'utf8');
    } catch {
      return '<unreadable>';
    }
  };
  return {
    instances: fs.readdirSync(join(root, 'instances')).sort().join(','),
    set_event: read('set_event'),
    tracing_on: read('tracing_on'),
    trace_options: read('trace_options'),
    buffer_size_kb: read('buffer_size_kb'),
    trace_clock: read('trace_clock'),
    current_tracer: read('current_tracer'),
  };
}

function write(path: string, value: string): void {
  try {
    fs.writeFileSync(path, value);
  } catch (e) {
    throw new MemleakError('E_LIVE', `cannot write ${JSON.stringify(value)}: ${(e as Error).message}`, { file: path });
  }
}

export class TraceInstance {
  readonly dir: string;
  private fds = new Map<number, number>();
  removed = false;

  private constructor(readonly root: string, readonly name: string) {
    this.dir = join(root, 'instances', name);
  }

  /** mkdir instances/NAME (the kernel builds the instance on mkdir). */
  static create(root: string, name: string): TraceInstance {
    const inst = new TraceInstance(root, name);
    try {
      fs.mkdirSync(inst.dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' ? 'it already exists (another sysak run?)' : code === 'EACCES' || code === 'EPERM' ? 'permission denied (run as root)' : (e as Error).message;
      throw new MemleakError('E_LIVE', `cannot create the tracing instance: ${why}`, { file: inst.dir });
    }
    return inst;
  }

  has(rel: string): boolean {
    return fs.existsSync(join(this.dir, rel));
  }

  set(rel: string, value: string): void {
    write(join(this.dir, rel), value);
  }

  eventFormat(system: string, event: string): EventFormat {
    const f = join(this.dir, 'events', system, event, 'format');
    return parseEventFormat(fs.readFileSync(f, 'utf8'), system, f);
  }

  headerPage(): PageHeaderFormat {
    const f = join(this.dir, 'events', 'header_page');
    return parseHeaderPage(fs.readFileSync(f, 'utf8'), f);
  }

  cpus(): number[] {
    return fs.readdirSync(join(this.dir, 'per_cpu')).filter((d) => /^cpu\d+$/.test(d)).map((d) => Number(d.slice(3))).sort((a, b) => a - b);
  }

  /** Pages available now on one CPU (non-blocking); [] when its buffer is empty. */
  readPages(cpu: number, pageSize: number, maxPages: number): Uint8Array[] {
    let fd = this.fds.get(cpu);
    if (fd === undefined) {
      fd = fs.openSync(join(this.dir, 'per_cpu', `cpu${cpu}`, 'trace_pipe_raw'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      this.fds.set(cpu, fd);
    }
    const out: Uint8Array[] = [];
    for (let i = 0; i < maxPages; i++) {
      const page = new Uint8Array(pageSize);
      let n: number;
      try {
        n = fs.readSync(fd, page, 0, pageSize, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw new MemleakError('E_LIVE', `reading the ring buffer failed: ${(e as Error).message}`, { file: join(this.dir, 'per_cpu', `cpu${cpu}`, 'trace_pipe_raw') });
      }
      if (n <= 0) break;
      out.push(page.subarray(0, n));
    }
    return out;
  }

  /** per_cpu/cpuN/stats: "overrun" and "dropped events" are events the kernel lost. */
  lostEvents(): number {
    let lost = 0;
    for (const cpu of this.cpus()) {
      try {
        const st = fs.readFileSync(join(this.dir, 'per_cpu', `cpu${cpu}`, 'stats'), 'utf8');
        for (const m of st.matchAll(/^(overrun|dropped events): (\d+)/gm)) lost += Number(m[2]);
      } catch {
        /* stats is informational */
      }
    }
    return lost;
  }

  /** Close the pipes and rmdir the instance; safe to call twice (signal handlers and finally both call it). */
  remove(): void {
    if (this.removed) return;
    for (const fd of this.fds.values()) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    this.fds.clear();
    try {
      fs.writeFileSync(join(this.dir, 'tracing_on'), '0');
    } catch {
      /* the instance may already be gone */
    }
    // rmdir fails with EBUSY while a reader still holds a file open; retry briefly.
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(this.dir);
        this.removed = true;
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          this.removed = true;
          return;
        }
        if (code !== 'EBUSY') throw new MemleakError('E_LIVE', `cannot remove the tracing instance: ${(e as Error).message}; remove it with rmdir`, { file: this.dir });
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
    throw new MemleakError('E_LIVE', 'the tracing instance stays busy: remove it with rmdir when its readers are gone', { file: this.dir });
  }
}
