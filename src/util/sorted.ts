/** Index of the last element at or below x in an ascending array (typed or not), or -1. */
export function floorIndex<T extends number | bigint>(sorted: ArrayLike<T>, x: T): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}
