/**
 * x86_64's base page size (PAGE_SIZE, 4 KiB), the one place it is written. Where a dump says its own
 * (VMCOREINFO PAGESIZE, Program.pageSize) that value is used; text inputs (crash rd, /proc files,
 * ftrace, ring-buffer pages) do not say, and this is their page.
 */
export const PAGE_SIZE = 4096;
export const PAGE_SIZE_BIG = 4096n;
/** The offset-in-page bits of an address (PAGE_SIZE - 1). */
export const PAGE_OFFSET_MASK = 0xfffn;
