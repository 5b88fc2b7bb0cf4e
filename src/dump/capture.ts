/**
 * Page capture for `extract` and live --save: a layer over a dump's physical memory that keeps every
 * page the first time it is read and serves later reads from the copy. One analysis thereby sees one
 * consistent snapshot even of a live kernel, and the extract holds exactly the bytes the analysis used.
 * The translation layer (kernel/program.ts) reads through it like any other physical memory.
 */
import type { PhysicalMemory } from './dump.js';

export class CapturedMemory implements PhysicalMemory {
  private readonly pages = new Map<number, Uint8Array>();
  private on = true;

  /** `under` null: a dump without physical memory (nothing to capture; every read is null). */
  constructor(
    private readonly under: PhysicalMemory | null,
    private readonly pageSize: number,
  ) {}

  get physEnd(): number {
    return this.under?.physEnd ?? 0;
  }

  /** True until stop(). */
  get capturing(): boolean {
    return this.on;
  }

  readPhys(paddr: number, len: number): Uint8Array | null {
    if (!this.under) return null;
    if (!this.on) return this.under.readPhys(paddr, len);
    const ps = this.pageSize;
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = paddr + done;
      const pfn = Math.floor(a / ps);
      let page = this.pages.get(pfn);
      if (!page) {
        const p = this.under.readPhys(pfn * ps, ps);
        if (!p) return null;
        page = p;
        this.pages.set(pfn, page);
      }
      const off = a - pfn * ps;
      const n = Math.min(ps - off, len - done);
      out.set(page.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Drops the copy of a page so the next read sees the kernel's current bytes (live retries). */
  forget(pfn: number): void {
    this.pages.delete(pfn);
  }

  /** Runs `read` with the capture paused (reads go to the dump, nothing is kept): a search past pages. */
  paused<T>(read: () => T): T {
    const was = this.on;
    this.on = false;
    try {
      return read();
    } finally {
      this.on = was;
    }
  }

  /** Ends the capture and hands over what was read: page frame number -> bytes. Later reads go through. */
  stop(): Map<number, Uint8Array> {
    this.on = false;
    return this.pages;
  }
}
