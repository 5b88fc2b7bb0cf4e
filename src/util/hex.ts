/**
 * `src/util/`: small helpers every layer may use and that use nothing else: hex, sorted lookups,
 * memory readers, file reading, PAGE_SIZE, the rd -S stand-in values.
 *
 * Address helpers: addresses are bigint at API boundaries and "0x..." strings in JSON.
 */

export const U64_MASK = (1n << 64n) - 1n;

export function hex(v: bigint | number, width = 0): string {
  const s = (typeof v === 'bigint' ? v & U64_MASK : BigInt(v)).toString(16);
  return '0x' + (width ? s.padStart(width, '0') : s);
}

/** Parses a hex address with or without 0x; returns null when it is not hex. */
export function parseHex(s: string): bigint | null {
  const t = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
  if (t.length === 0 || t.length > 16 || !/^[0-9a-fA-F]+$/.test(t)) return null;
  return BigInt('0x' + t);
}

export function parseSize(s: string): number | null {
  // "4k", "8k", "2M", "4096"
  const m = /^(\d+)([kKmM]?)$/.exec(s.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const mul = m[2] === '' ? 1 : m[2].toLowerCase() === 'k' ? 1024 : 1024 * 1024;
  return n * mul;
}
