/** Summary statistics for timing samples: min, median, ratio of medians, and the paired ratio. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function min(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : Math.min(...xs);
}

/**
 * Median of a[i]/b[i] over the runs both tools completed. Runs were interleaved (A B A B), so each pair
 * shares the machine's state at that moment and slow drift (other load, page cache) cancels out.
 */
export function pairedRatio(a: readonly (number | undefined)[], b: readonly (number | undefined)[]): number {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x !== undefined && y !== undefined && y > 0) ratios.push(x / y);
  }
  return median(ratios);
}
