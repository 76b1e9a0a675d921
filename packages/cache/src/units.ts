// Human units for the cache commands: durations ("24h", "7d", "30m") and sizes ("10GB", "512MiB").
import { CacheError } from "./errors.js";

export class InvalidUnitError extends CacheError {}

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds in a duration such as "24h", "7d", "30m", "1h30m", "90s" (Go-style sequences allowed). */
export function parseDuration(text: string): number {
  const s = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (s === "" || matched !== s.length) throw new InvalidUnitError(`invalid duration ${JSON.stringify(text)}: expected e.g. 30m, 24h, 7d`);
  return Math.round(total);
}

const SIZE_FACTORS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** Bytes in a size such as "10GB" (decimal), "512MiB" (binary), "1.5g" or "4096". */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = m ? SIZE_FACTORS[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) throw new InvalidUnitError(`invalid size ${JSON.stringify(text)}: expected e.g. 512MiB, 10GB`);
  return Math.floor(Number(m[1]) * factor);
}

/** "1.23GB"-style decimal size as docker prints it. */
export function formatSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)}${units[i]}`;
}
