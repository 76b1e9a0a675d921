// Docker's human-readable figures, reproduced exactly: go-units HumanSizeWithPrecision (decimal units,
// Go's %.3g), go-units HumanDuration, and docker/cli's Ellipsis truncation.

const DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"] as const;

/** `docker history` / `docker images` sizes: 3 significant digits, powers of 1000 ("1.66MB", "0B", "1e+03kB"). */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${formatGoG(size, precision)}${DECIMAL_UNITS[i]}`;
}

/** Exact decimal digits of a non-negative finite double: significant digits (no leading/trailing zeros) and decimal point position. */
function exactDigits(x: number): { digits: string; dp: number } {
  // toFixed(100) is exact for the magnitudes used here (the binary fraction of a double ends within 100 decimals below 2^-1).
  const [intPart = "", frac = ""] = x.toFixed(100).split(".");
  let digits = intPart + frac;
  let dp = intPart.length;
  const lead = digits.search(/[1-9]/);
  if (lead < 0) return { digits: "", dp: 0 };
  digits = digits.slice(lead);
  dp -= lead;
  return { digits: digits.replace(/0+$/, ""), dp };
}

/** Rounds decimal digits to `n` significant digits the way Go's strconv does (exact halves to even). */
function roundDigits(digits: string, dp: number, n: number): { digits: string; dp: number } {
  if (digits.length <= n) return { digits, dp };
  const next = digits[n]!;
  const exactHalf = next === "5" && digits.length === n + 1;
  const up = exactHalf ? n > 0 && Number(digits[n - 1]) % 2 === 1 : next >= "5";
  let kept = digits.slice(0, n);
  if (up) {
    let i = kept.length - 1;
    while (i >= 0 && kept[i] === "9") i--;
    if (i < 0) return { digits: "1", dp: dp + 1 };
    kept = kept.slice(0, i) + String(Number(kept[i]) + 1);
  }
  return { digits: kept.replace(/0+$/, ""), dp };
}

/** Go's fmt `%.{prec}g` for a non-negative finite number. */
export function formatGoG(x: number, prec: number): string {
  if (!Number.isFinite(x) || x < 0) throw new RangeError(`formatGoG: unsupported value ${x}`);
  const p0 = Math.max(prec, 1);
  const exact = exactDigits(x);
  const { digits, dp } = roundDigits(exact.digits, exact.dp, p0);
  const nd = digits.length;
  let eprec = p0;
  if (eprec > nd && nd >= dp) eprec = nd;
  const exp = dp - 1;
  if (nd > 0 && (exp < -4 || exp >= eprec)) {
    const p = Math.min(p0, nd);
    let out = digits[0]!;
    if (p > 1) out += `.${digits.slice(1, p)}`;
    return `${out}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const p = p0 > dp ? nd : p0;
  const decimals = Math.max(p - dp, 0);
  let out = dp > 0 ? digits.slice(0, dp).padEnd(dp, "0") : "0";
  if (decimals > 0) {
    out += ".";
    for (let i = 1; i <= decimals; i++) {
      const j = dp + i - 1;
      out += j >= 0 && j < nd ? digits[j] : "0";
    }
  }
  return out;
}

/** go-units HumanDuration: "Less than a second", "About a minute", "2 hours", "3 weeks". */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Whole seconds since the epoch of an RFC 3339 timestamp (fractions dropped, as Docker's Unix() does), or
 * undefined when absent or unparsable. Parsed by hand: Date.parse is lenient and loses nanoseconds anyway.
 */
export function unixSeconds(timestamp: string | undefined): number | undefined {
  if (timestamp === undefined) return undefined;
  const m = RFC3339_RE.exec(timestamp.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, , sign, oh, om] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (sign) ms -= (sign === "-" ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** Go's time.Unix(s, 0).Format(time.RFC3339) in the local zone ("2024-05-01T10:00:00Z" in UTC). */
export function formatRfc3339(seconds: number): string {
  const date = new Date(seconds * 1000);
  const offsetMin = -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offsetMin * 60_000);
  const base = local.toISOString().slice(0, 19);
  if (offsetMin === 0) return `${base}Z`;
  const abs = Math.abs(offsetMin);
  return `${base}${offsetMin < 0 ? "-" : "+"}${String(Math.trunc(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** East Asian Wide and Fullwidth code points take two terminal columns (golang.org/x/text/width). */
export function charWidth(cp: number): number {
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

/** Display width of a string in terminal columns. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/**
 * docker/cli's formatter.Ellipsis: fit `s` in `max` columns, ending with "…" when cut. ASCII-only strings
 * are cut by characters; others by display width (wide characters count 2).
 */
export function ellipsis(s: string, max: number): string {
  if (max <= 0) return "";
  const runes = [...s];
  if (max === 1) return runes[0] ?? "";
  if (Buffer.byteLength(s, "utf8") === runes.length) {
    return runes.length <= max ? s : `${runes.slice(0, max - 1).join("")}…`;
  }
  if (displayWidth(s) <= max) return s;
  let width = 0;
  let out = "";
  for (const r of runes) {
    width += charWidth(r.codePointAt(0)!);
    if (width > max - 1) break;
    out += r;
  }
  return `${out}…`;
}
