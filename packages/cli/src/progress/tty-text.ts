// Text helpers for the tty progress view: make arbitrary build output safe to place on one terminal line,
// and measure/clip it by terminal cells (not UTF-16 units) so no line ever wraps and breaks the redraw.

// CSI (ESC [ … final), OSC (ESC ] … BEL/ST), and other two-byte escapes that programs' logs may contain.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]/g;
// C0/C1 controls other than tab; a stray one would move the cursor or change modes behind our back.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** One log line as the terminal would finally show it: escapes removed, `\r` rewrites kept last, tabs expanded. */
export function sanitizeLine(raw: string): string {
  let line = raw.replace(ESCAPES, "");
  // Progress bars redraw with \r; only what was written after the last \r is still visible.
  const segments = line.split("\r").filter((s) => s.length > 0);
  line = segments.length > 0 ? segments[segments.length - 1]! : "";
  line = line.replace(CONTROLS, "");
  if (line.includes("\t")) {
    let out = "";
    for (const ch of line) out += ch === "\t" ? " ".repeat(8 - (cellWidth(out) % 8)) : ch;
    line = out;
  }
  return line.trimEnd();
}

/** Cells a code point takes: 0 for combining marks, 2 for East Asian wide/fullwidth and emoji, else 1. */
export function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}

/** Width in cells of text without escape sequences. */
export function cellWidth(text: string): number {
  let w = 0;
  for (const ch of text) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** The longest prefix of `text` that fits in `width` cells; "…" marks a cut when there is room for it. */
export function clip(text: string, width: number): string {
  if (width <= 0) return "";
  if (cellWidth(text) <= width) return text;
  let out = "";
  let w = 0;
  for (const ch of text) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return `${out}…`;
}

/** `left` and `right` on one line of exactly `width` cells at most; `left` is clipped first, `right` kept. */
export function justify(left: string, right: string, width: number): string {
  const rw = cellWidth(right);
  if (rw + 2 > width) return clip(left, width);
  const l = clip(left, width - rw - 1);
  return `${l}${" ".repeat(width - cellWidth(l) - rw)}${right}`;
}

/** Sizes the way docker prints them (decimal units, 3 significant digits): 12.5MB, 170MB, 512B. */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = u === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))}${units[u]}`;
}

export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}
