// Go's time.ParseDuration, because HEALTHCHECK durations must accept and reject exactly what
// BuildKit accepts ("1m30s", ".5h", "1.5µs") with the same messages.
import { InstructionError } from "./instruction-error.js";

const NS = 1n;
const UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", NS],
  ["us", 1_000n],
  ["µs", 1_000n], // U+00B5 micro sign
  ["μs", 1_000n], // U+03BC Greek mu
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
]);
const LIMIT = 1n << 63n;

function invalid(orig: string): InstructionError {
  return new InstructionError(`time: invalid duration ${JSON.stringify(orig)}`);
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";

/** Parses a Go duration string into nanoseconds (as a bigint: Go allows up to 2^63-1 ns). */
export function parseGoDuration(text: string): bigint {
  const orig = text;
  let s = text;
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") throw invalid(orig);
  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) throw invalid(orig);
    let i = 0;
    let whole = 0n;
    while (isDigit(s[i])) {
      whole = whole * 10n + BigInt(s.charCodeAt(i) - 48);
      if (whole >= LIMIT) throw invalid(orig);
      i++;
    }
    const pre = i > 0;
    s = s.slice(i);
    let frac = 0n;
    let scale = 1n;
    let post = false;
    if (s[0] === ".") {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      while (isDigit(s[j])) {
        // Like Go, digits past int64 precision are consumed but ignored.
        if (!overflow) {
          const next = frac * 10n + BigInt(s.charCodeAt(j) - 48);
          if (next >= LIMIT) overflow = true;
          else {
            frac = next;
            scale *= 10n;
          }
        }
        j++;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) throw invalid(orig);
    let u = 0;
    while (u < s.length && !(s[u] === "." || isDigit(s[u]))) u++;
    if (u === 0) throw new InstructionError(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const unitName = s.slice(0, u);
    s = s.slice(u);
    const unit = UNITS.get(unitName);
    if (unit === undefined) {
      throw new InstructionError(`time: unknown unit ${JSON.stringify(unitName)} in duration ${JSON.stringify(orig)}`);
    }
    if (whole > LIMIT / unit) throw invalid(orig);
    let value = whole * unit;
    if (frac > 0n) {
      // Go computes this part in float64: float64(f) * (float64(unit) / scale).
      value += BigInt(Math.trunc(Number(frac) * (Number(unit) / Number(scale))));
      if (value > LIMIT) throw invalid(orig);
    }
    total += value;
    if (total > LIMIT) throw invalid(orig);
  }
  if (neg) return -total;
  if (total > LIMIT - 1n) throw invalid(orig);
  return total;
}

/** BuildKit's minimum for a non-zero HEALTHCHECK interval. */
export const ONE_MILLISECOND_NS = 1_000_000n;
