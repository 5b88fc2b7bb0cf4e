/** Byte units for messages and reports: the check's reasons and every renderer print sizes this way. */
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
