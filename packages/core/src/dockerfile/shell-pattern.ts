/**
 * Glob patterns of `${V#p}`, `${V%p}` and `${V/p/r}` with BuildKit's semantics: `?` is one
 * character, `*` any run, `\` escapes only `*`, `?`, `\` (and is dropped before `}` and `/`), no
 * bracket expressions. BuildKit turns the pattern into a Go regexp where both wildcards stop at
 * "\n" (Go's `.`); matching here is a backtracking search in the same priority order, memoised so
 * it stays O(pattern × text) instead of exploding on many stars.
 */
import { EOF, codePoints, isGoDigit, isGoLetter, runeText } from "./shell-chars.js";

type PatternToken = { kind: "literal"; cp: number } | { kind: "any" } | { kind: "star" };

/** A pattern BuildKit refuses; `reason` is the regexp conversion's message. */
export class ShellPatternError extends Error {
  override readonly name = "ShellPatternError";
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(`invalid pattern (${pattern}) in substitution: ${reason}`);
  }
}

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const BOM = 0xfeff;

function compilePattern(pattern: string): PatternToken[] {
  const cps = codePoints(pattern);
  // Go's text/scanner drops a byte-order mark at the very start of its input.
  let i = cps[0] === BOM ? 1 : 0;
  const tokens: PatternToken[] = [];
  while (i < cps.length) {
    const cp = cps[i++] as number;
    if (cp === 0x2a) {
      tokens.push({ kind: "star" });
    } else if (cp === 0x3f) {
      tokens.push({ kind: "any" });
    } else if (cp === BACKSLASH) {
      const next = i < cps.length ? (cps[i] as number) : EOF;
      if (next === 0x7d || next === 0x2f) continue; // `\}` and `\/` only protect ${} syntax
      i++;
      if (next !== 0x2a && next !== 0x3f && next !== BACKSLASH) {
        throw new ShellPatternError(pattern, `invalid escape '\\${runeText(next)}'`);
      }
      tokens.push({ kind: "literal", cp: next });
    } else {
      tokens.push({ kind: "literal", cp });
    }
  }
  return tokens;
}

/**
 * End of the preferred match of `tokens` starting at `start`, or -1. `failed` remembers states
 * (token, position) already explored without success; it stays valid across start positions.
 */
function matchAt(tokens: PatternToken[], text: number[], start: number, greedy: boolean, failed: Set<number>): number {
  const n = text.length;
  const m = tokens.length;
  const stack: number[] = [0, start];
  while (stack.length > 0) {
    const si = stack.pop() as number;
    const pi = stack.pop() as number;
    if (pi === m) return si;
    const key = pi * (n + 1) + si;
    if (failed.has(key)) continue;
    // Positions only grow along a path, so a state seen again has been fully explored: it failed.
    failed.add(key);
    const tok = tokens[pi] as PatternToken;
    const ch = si < n ? (text[si] as number) : EOF;
    if (tok.kind === "literal") {
      if (ch === tok.cp) stack.push(pi + 1, si + 1);
    } else if (tok.kind === "any") {
      if (ch !== EOF && ch !== NEWLINE) stack.push(pi + 1, si + 1);
    } else {
      const canEat = ch !== EOF && ch !== NEWLINE;
      // Push the less preferred branch first so the preferred one is explored first.
      if (greedy) {
        stack.push(pi + 1, si);
        if (canEat) stack.push(pi, si + 1);
      } else {
        if (canEat) stack.push(pi, si + 1);
        stack.push(pi + 1, si);
      }
    }
  }
  return -1;
}

/** Leftmost match at or after `from`: [start, end) in code points, or undefined. */
function search(tokens: PatternToken[], text: number[], from: number, greedy: boolean): [number, number] | undefined {
  const failed = new Set<number>();
  for (let start = from; start <= text.length; start++) {
    const end = matchAt(tokens, text, start, greedy, failed);
    if (end >= 0) return [start, end];
  }
  return undefined;
}

function fromCodePoints(cps: number[], start = 0, end = cps.length): string {
  let out = "";
  for (let i = start; i < end; i++) out += String.fromCodePoint(cps[i] as number);
  return out;
}

/** `${V#p}` / `${V##p}`: drop the shortest (or longest) prefix of `value` matching `pattern`. */
export function trimPatternPrefix(pattern: string, value: string, greedy: boolean): string {
  const tokens = compilePattern(pattern);
  const text = codePoints(value);
  const end = matchAt(tokens, text, 0, greedy, new Set());
  return end >= 0 ? fromCodePoints(text, end) : value;
}

/**
 * Reverse a pattern but keep each `\x` escape pair in order, as BuildKit does so a suffix trim can
 * run as a prefix trim on reversed text.
 */
export function reversePattern(pattern: string): string {
  const cps = codePoints(pattern);
  const last = cps.length - 1;
  const out = new Array<number>(cps.length);
  for (let i = 0; i <= last; ) {
    const cp = cps[i] as number;
    const at = last - i;
    if (cp === BACKSLASH && i !== last) {
      out[at - 1] = cp;
      out[at] = cps[i + 1] as number;
      i += 2;
    } else {
      out[at] = cp;
      i++;
    }
  }
  return fromCodePoints(out);
}

function reverseText(text: string): string {
  return fromCodePoints(codePoints(text).reverse());
}

/** `${V%p}` / `${V%%p}`: drop the shortest (or longest) suffix of `value` matching `pattern`. */
export function trimPatternSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseText(trimPatternPrefix(reversePattern(pattern), reverseText(value), greedy));
}

/**
 * Go's Regexp.Expand for a pattern without groups: `$$` is "$", `$0`/`${0}` the match, any other
 * well-formed `$name` nothing, and a malformed `$` stays literal.
 */
function expandTemplate(template: number[], matched: string): string {
  let out = "";
  let i = 0;
  while (i < template.length) {
    const cp = template[i] as number;
    if (cp !== 0x24) {
      out += String.fromCodePoint(cp);
      i++;
      continue;
    }
    i++;
    if (template[i] === 0x24) {
      out += "$";
      i++;
      continue;
    }
    let j = i;
    const brace = template[j] === 0x7b;
    if (brace) j++;
    const nameStart = j;
    while (j < template.length && (isGoLetter(template[j] as number) || isGoDigit(template[j] as number) || template[j] === 0x5f)) j++;
    const name = fromCodePoints(template, nameStart, j);
    if (name === "" || (brace && template[j] !== 0x7d)) {
      out += "$"; // malformed: the `$` is kept and scanning resumes right after it
      continue;
    }
    if (brace) j++;
    if (name === "0") out += matched;
    i = j;
  }
  return out;
}

/** `${V/p/r}` and `${V//p/r}`: replace the first (or every) leftmost-longest-star match of `pattern`. */
export function replacePattern(value: string, pattern: string, replacement: string, all: boolean): string {
  const tokens = compilePattern(pattern);
  const text = codePoints(value);
  if (!all) {
    // Only the first match; Go splices the replacement in literally here.
    const hit = search(tokens, text, 0, true);
    if (!hit) return value;
    return fromCodePoints(text, 0, hit[0]) + replacement + fromCodePoints(text, hit[1]);
  }
  // Go's ReplaceAllString loop: an empty match right after a match is not replaced, and the search
  // always advances by at least one character.
  const template = codePoints(replacement);
  let out = "";
  let lastEnd = 0;
  let pos = 0;
  while (pos <= text.length) {
    const hit = search(tokens, text, pos, true);
    if (!hit) break;
    const [start, end] = hit;
    out += fromCodePoints(text, lastEnd, start);
    if (end > lastEnd || start === 0) out += expandTemplate(template, fromCodePoints(text, start, end));
    lastEnd = end;
    const width = pos < text.length ? 1 : 0;
    if (pos + width > end) pos += width;
    else if (pos + 1 > end) pos++;
    else pos = end;
  }
  return out + fromCodePoints(text, lastEnd);
}
