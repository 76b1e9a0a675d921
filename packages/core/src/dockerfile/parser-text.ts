// Text helpers that behave like the Go standard library functions BuildKit's parser relies on
// (unicode.IsSpace, strings.TrimSpace, strings.ToLower, strconv.Quote). JavaScript's own `\s`,
// trim() and toLowerCase() disagree with Go on a handful of characters, and those differences
// would change how a Dockerfile splits into words.

/** A problem found while parsing one instruction; the main loop turns it into a DockerfileError. */
export class LineParseError extends Error {
  override readonly name = "LineParseError";
}

/** Go's unicode.IsSpace for one UTF-16 code unit (every White_Space character is in the BMP). */
export function isGoSpace(code: number): boolean {
  if (code <= 0xff) {
    return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0x85 || code === 0xa0;
  }
  return (
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** Go's strings.TrimLeftFunc(s, unicode.IsSpace). */
export function goTrimLeft(s: string): string {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}

/** Go's strings.TrimSpace. */
export function goTrimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isGoSpace(s.charCodeAt(start))) start++;
  while (end > start && isGoSpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** BuildKit's `[\t\v\f\r ]+` separator (note: narrower than unicode.IsSpace). */
export const WHITESPACE_RUN = /[\t\v\f\r ]+/;

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

export function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}

/**
 * Go's strings.ToLower: simple per-character case mapping. Unlike String#toLowerCase it never
 * expands a character (İ becomes "i") and has no final-sigma rule.
 */
export function goToLower(s: string): string {
  if (isAscii(s)) return s.toLowerCase();
  let out = "";
  for (const ch of s) {
    if (ch === "\u0130") {
      out += "i";
      continue;
    }
    const lower = ch.toLowerCase();
    out += [...lower].length === 1 ? lower : ch;
  }
  return out;
}

/**
 * Some BuildKit loops walk a Go string byte by byte and turn each byte into a rune. To reproduce
 * that, code works on a "byte string": one char per UTF-8 byte (Latin-1 view of the bytes).
 */
export function toByteString(s: string): string {
  return isAscii(s) ? s : Buffer.from(s, "utf8").toString("latin1");
}

/** Inverse of toByteString for a slice of it; stray partial sequences decode to U+FFFD. */
export function fromByteString(bytes: string): string {
  return isAscii(bytes) ? bytes : Buffer.from(bytes, "latin1").toString("utf8");
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function isGoPrint(ch: string, code: number): boolean {
  if (code < 0x80) return code >= 0x20 && code < 0x7f;
  return PRINTABLE.test(ch);
}

const SHORT_ESCAPES: Record<number, string> = {
  0x07: "\\a",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
};

/** Go's strconv.Quote (used by BuildKit's Dump and by `%q` in its error messages). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    let code = ch.codePointAt(0) ?? 0;
    // A lone surrogate cannot come from UTF-8 input; Go would see U+FFFD there.
    if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
    if (code === 0x22 || code === 0x5c) {
      out += "\\" + ch;
    } else if (isGoPrint(String.fromCodePoint(code), code)) {
      out += String.fromCodePoint(code);
    } else if (SHORT_ESCAPES[code] !== undefined) {
      out += SHORT_ESCAPES[code];
    } else if (code < 0x20 || code === 0x7f) {
      out += "\\x" + code.toString(16).padStart(2, "0");
    } else if (code < 0x10000) {
      out += "\\u" + code.toString(16).padStart(4, "0");
    } else {
      out += "\\U" + code.toString(16).padStart(8, "0");
    }
  }
  return out + '"';
}
