/**
 * Character classes and quoting as Go's `unicode` and `strconv` packages define them, so the shell
 * lexer splits, names and reports exactly where BuildKit does (JS `\s` differs from Go's IsSpace).
 */

/** A code point, or EOF (-1) the way Go's text/scanner reports the end. */
export const EOF = -1;

const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's unicode.IsSpace. */
export function isGoSpace(cp: number): boolean {
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return (
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** Go's unicode.IsLetter. */
export function isGoLetter(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  return cp >= 0 && LETTER.test(String.fromCodePoint(cp));
}

/** Go's unicode.IsDigit (any decimal digit, not only ASCII). */
export function isGoDigit(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x30 && cp <= 0x39;
  return cp >= 0 && DIGIT.test(String.fromCodePoint(cp));
}

/** Text of one rune as Go's string(rune) renders it: EOF and other invalid runes become U+FFFD. */
export function runeText(cp: number): string {
  return cp < 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ? "\uFFFD" : String.fromCodePoint(cp);
}

/**
 * Code points of a JS string as Go sees the same text after UTF-8 encoding: lone surrogates cannot
 * be encoded and arrive as U+FFFD.
 */
export function codePoints(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0xfffd;
    out.push(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
  }
  return out;
}

/** Go's strings.ToUpper approximated per code point (simple case mapping, no expansion like ß→SS). */
export function goToUpper(text: string): string {
  let out = "";
  for (const ch of text) {
    const up = ch.toUpperCase();
    out += [...up].length === 1 ? up : ch;
  }
  return out;
}

function hex(cp: number, width: number): string {
  return cp.toString(16).padStart(width, "0");
}

/** Go's strconv.Quote (what `%q` prints), used for messages that quote the failing word. */
export function goQuote(text: string): string {
  let out = '"';
  for (const cp of codePoints(text)) {
    if (cp === 0x22 || cp === 0x5c) {
      out += "\\" + String.fromCodePoint(cp);
    } else if (cp === 0x20 || PRINTABLE.test(String.fromCodePoint(cp))) {
      out += String.fromCodePoint(cp);
    } else {
      const named: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r" };
      const esc = named[cp];
      if (esc !== undefined) out += esc;
      else if (cp < 0x20 || cp === 0x7f) out += "\\x" + hex(cp, 2);
      else if (cp < 0x10000) out += "\\u" + hex(cp, 4);
      else out += "\\U" + hex(cp, 8);
    }
  }
  return out + '"';
}
