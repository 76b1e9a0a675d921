// Go path semantics needed to behave like Docker: filepath.Clean, filepath.Dir and
// path.Match (the glob syntax COPY wildcards and .dockerignore lines are validated with).
import { posix } from "node:path";
import { BadPatternError } from "./errors.js";

/** Go's filepath.Clean on a slash path: like posix.normalize but without a trailing slash. */
export function goClean(p: string): string {
  if (p === "") return ".";
  const out = posix.normalize(p);
  return out.length > 1 && out.endsWith("/") ? out.slice(0, -1) : out;
}

/** Go's filepath.Dir: everything before the last slash, cleaned ("." when there is none). */
export function goDir(p: string): string {
  const i = p.lastIndexOf("/");
  return goClean(p.slice(0, i + 1));
}

const GO_SPACE = "\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const GO_TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, "gu");

/** Go's strings.TrimSpace (unicode.IsSpace; unlike String.prototype.trim it keeps U+FEFF). */
export function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, "");
}

/** BuildKit's containsWildcards: `*`, `?` or `[` not preceded by a backslash escape. */
export function containsWildcards(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "*" || c === "?" || c === "[") return true;
    if (c === "\\") i++;
  }
  return false;
}

/** Characters that need a backslash to be literal in a JS RegExp with the `u` flag. */
const RE_SYNTAX = new Set(["^", "$", "\\", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "/"]);
const CLASS_SYNTAX = new Set(["\\", "]", "[", "^", "-"]);

export function escapeRegExpChar(c: string): string {
  return RE_SYNTAX.has(c) ? `\\${c}` : c;
}

function escapeClassChar(c: string): string {
  return CLASS_SYNTAX.has(c) ? `\\${c}` : c;
}

/** A parsed `[...]` class in Go path.Match syntax. */
export interface CharClass {
  negated: boolean;
  ranges: Array<[lo: string, hi: string]>;
  /** Index just past the closing `]` in the code point array. */
  end: number;
}

/**
 * Parses a Go path.Match character class starting after `[` at `start` in `chars`
 * (code points). Throws BadPatternError for the forms Go rejects (`[]a]`, `[-]`, `[x-]`,
 * `[a-b-c]`, unterminated classes, dangling escapes).
 */
export function parseCharClass(chars: readonly string[], start: number, pattern: string): CharClass {
  let i = start;
  let negated = false;
  if (chars[i] === "^") {
    negated = true;
    i++;
  }
  const ranges: Array<[string, string]> = [];
  const esc = (): string => {
    let c = chars[i];
    if (c === undefined || c === "-" || c === "]") throw new BadPatternError(pattern);
    if (c === "\\") {
      i++;
      c = chars[i];
      if (c === undefined) throw new BadPatternError(pattern);
    }
    i++;
    if (i >= chars.length) throw new BadPatternError(pattern);
    return c;
  };
  for (;;) {
    if (chars[i] === "]" && ranges.length > 0) {
      i++;
      break;
    }
    const lo = esc();
    let hi = lo;
    if (chars[i] === "-") {
      i++;
      hi = esc();
    }
    ranges.push([lo, hi]);
  }
  return { negated, ranges, end: i };
}

/**
 * JS class source for a parsed class. Go's path.Match treats a reversed range as matching
 * nothing; `strictRanges` instead reports it (Docker's regexp compiler rejects it).
 */
export function charClassSource(cls: CharClass, pattern: string, strictRanges: boolean): string {
  let body = "";
  for (const [lo, hi] of cls.ranges) {
    const l = lo.codePointAt(0) ?? 0;
    const h = hi.codePointAt(0) ?? 0;
    if (l > h) {
      if (strictRanges) throw new BadPatternError(pattern, "invalid character class range");
      continue;
    }
    body += l === h ? escapeClassChar(lo) : `${escapeClassChar(lo)}-${escapeClassChar(hi)}`;
  }
  return `[${cls.negated ? "^" : ""}${body}]`;
}

/** Throws BadPatternError unless `pattern` is valid Go path.Match syntax. */
export function validateGoPattern(pattern: string): void {
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "\\") {
      if (i + 1 >= chars.length) throw new BadPatternError(pattern);
      i++;
    } else if (c === "[") {
      i = parseCharClass(chars, i + 1, pattern).end - 1;
    }
  }
}

/** Compiles a Go path.Match pattern to an anchored RegExp (`*`/`?` never match `/`). */
export function compileGoPattern(pattern: string): RegExp {
  const chars = Array.from(pattern);
  let src = "^";
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === "*") src += "[^/]*";
    else if (c === "?") src += "[^/]";
    else if (c === "\\") {
      const next = chars[++i];
      if (next === undefined) throw new BadPatternError(pattern);
      src += escapeRegExpChar(next);
    } else if (c === "[") {
      const cls = parseCharClass(chars, i + 1, pattern);
      src += charClassSource(cls, pattern, false);
      i = cls.end - 1;
    } else src += escapeRegExpChar(c);
  }
  return new RegExp(`${src}$`, "u");
}

const goPatternCache = new Map<string, RegExp>();

/** Go's path.Match(pattern, name). Throws BadPatternError for malformed patterns. */
export function goPathMatch(pattern: string, name: string): boolean {
  let re = goPatternCache.get(pattern);
  if (!re) {
    re = compileGoPattern(pattern);
    if (goPatternCache.size > 1000) goPatternCache.clear();
    goPatternCache.set(pattern, re);
  }
  return re.test(name);
}
