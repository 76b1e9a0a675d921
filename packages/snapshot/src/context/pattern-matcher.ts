// .dockerignore matching with the semantics of moby/patternmatcher (what BuildKit's context
// transfer uses): patterns are anchored at the context root, `**` spans directories, a
// pattern matching a parent directory matches everything below it, `!` re-includes, and the
// last matching pattern wins.
import { BadPatternError } from "./errors.js";
import {
  charClassSource,
  escapeRegExpChar,
  goClean,
  goDir,
  goTrimSpace,
  parseCharClass,
  validateGoPattern,
} from "./go-path.js";

type MatchKind = "exact" | "prefix" | "suffix" | "regexp";

/** One compiled line. Matching is a string compare except for real globs, so most lines cost no regexp. */
export class IgnorePattern {
  readonly kind: MatchKind;
  private readonly re: RegExp | undefined;
  private readonly compileError: BadPatternError | undefined;
  private readonly literal: string;
  /** For a regexp: the literal text after its last glob character, which every match ends with. */
  private readonly tail: string;

  constructor(
    /** The cleaned pattern without its leading `!`. */
    readonly text: string,
    /** True for `!` lines (exceptions that re-include). */
    readonly exception: boolean,
  ) {
    let kind: MatchKind = "exact";
    let re: RegExp | undefined;
    let error: BadPatternError | undefined;
    try {
      const compiled = compileIgnorePattern(text);
      kind = compiled.kind;
      if (kind === "regexp") re = new RegExp(compiled.source, "u");
    } catch (e) {
      // Docker accepts such a line when parsing and fails on every match; do the same.
      error = e instanceof BadPatternError ? e : new BadPatternError(text);
    }
    this.kind = kind;
    this.re = re;
    this.compileError = error;
    this.literal =
      kind === "prefix" ? text.slice(0, -2) : kind === "suffix" ? text.slice(2) : text;
    // The regexp is anchored at the end and the tail holds no special character, so a path
    // not ending with it can be rejected without running the regexp (`**/*.log` → ".log").
    this.tail = kind === "regexp" ? text.slice(Math.max(...["*", "?", "[", "]", "\\", "^"].map((c) => text.lastIndexOf(c))) + 1) : "";
  }

  /** Does this pattern match `path` itself (no parent-directory logic)? */
  matches(path: string): boolean {
    if (this.compileError) throw this.compileError;
    switch (this.kind) {
      case "exact":
        return path === this.literal;
      case "prefix":
        return path.startsWith(this.literal);
      case "suffix":
        // `**/foo` also matches a top-level `foo`.
        return path.endsWith(this.literal) || (this.literal[0] === "/" && path === this.literal.slice(1));
      case "regexp":
        return path.endsWith(this.tail) && (this.re as RegExp).test(path);
    }
  }

  toString(): string {
    return this.exception ? `!${this.text}` : this.text;
  }
}

/** Translates a cleaned pattern the way Docker's matcher interprets it. */
function compileIgnorePattern(text: string): { kind: MatchKind; source: string } {
  const chars = Array.from(text);
  let kind: MatchKind = "exact";
  let src = "^";
  for (let i = 0, token = 0; i < chars.length; token++) {
    const c = chars[i++] as string;
    if (c === "*" && chars[i] === "*") {
      i++;
      if (chars[i] === "/") i++; // `**/` behaves like `**`
      if (i >= chars.length) {
        // Trailing `**` accepts everything, like .gitignore.
        if (kind === "exact") kind = "prefix";
        else {
          src += ".*";
          kind = "regexp";
        }
      } else {
        src += "(?:.*/)?";
        kind = "regexp";
      }
      if (token === 0) kind = "suffix";
    } else if (c === "*") {
      src += "[^/]*";
      kind = "regexp";
    } else if (c === "?") {
      src += "[^/]";
      kind = "regexp";
    } else if (c === "\\") {
      const next = chars[i];
      if (next === undefined) src += "\\\\";
      else {
        src += escapeRegExpChar(next);
        i++;
        kind = "regexp";
      }
    } else if (c === "[") {
      const cls = parseCharClass(chars, i, text);
      src += charClassSource(cls, text, true);
      i = cls.end;
      kind = "regexp";
    } else if (c === "]") {
      src += "\\]";
      kind = "regexp";
    } else if (c === "^") {
      // Docker leaves `^` unescaped in its regexp, where it is a start-of-text anchor.
      src += "^";
    } else src += escapeRegExpChar(c);
  }
  return { kind, source: `${src}$` };
}

/**
 * Per-pattern "did this pattern match the parent directory" flags, threaded through a
 * directory walk so children don't re-test their ancestors. Empty means "unknown".
 */
export type MatchInfo = readonly boolean[];

export interface MatchResult {
  matched: boolean;
  info: MatchInfo;
}

export class PatternMatcher {
  /** True when some line is a `!` exception. */
  readonly hasExceptions: boolean;

  private constructor(readonly patterns: readonly IgnorePattern[]) {
    this.hasExceptions = patterns.some((p) => p.exception);
  }

  /**
   * Builds a matcher from pattern lines (as returned by parseIgnoreFile). Lines are trimmed
   * and cleaned; empty lines are dropped; `!` alone and malformed globs are errors.
   */
  static from(lines: readonly string[]): PatternMatcher {
    const out: IgnorePattern[] = [];
    for (const line of lines) {
      let p = goTrimSpace(line);
      if (p === "") continue;
      p = goClean(p);
      let exception = false;
      if (p[0] === "!") {
        if (p.length === 1) throw new BadPatternError(p, 'illegal exclusion pattern: "!"');
        exception = true;
        p = p.slice(1);
      }
      validateGoPattern(p);
      out.push(new IgnorePattern(p, exception));
    }
    return new PatternMatcher(out);
  }

  get isEmpty(): boolean {
    return this.patterns.length === 0;
  }

  /** Is `path` (slash-separated, relative to the root) excluded, checking every parent directory? */
  matchesOrParentMatches(path: string): boolean {
    let matched = false;
    const parent = goDir(path);
    const parentPrefixes = parent === "." ? [] : prefixes(parent);
    for (const pattern of this.patterns) {
      // An include can't change an already-excluded path, nor an exception an included one.
      if (pattern.exception !== matched) continue;
      let hit = pattern.matches(path);
      if (!hit) hit = parentPrefixes.some((dir) => pattern.matches(dir));
      if (hit) matched = !pattern.exception;
    }
    return matched;
  }

  /**
   * Same answer as matchesOrParentMatches, given the MatchInfo returned for the parent
   * directory (pass nothing for a top-level path or when unknown).
   */
  matchesUsingParentResults(path: string, parent: MatchInfo = []): MatchResult {
    const n = this.patterns.length;
    const haveParent = parent.length !== 0;
    if (haveParent && parent.length !== n) throw new Error("wrong number of values in parent match info");
    const info: boolean[] = new Array<boolean>(n).fill(false);
    let matched = false;
    let parentPrefixes: string[] | undefined;
    for (let i = 0; i < n; i++) {
      const pattern = this.patterns[i] as IgnorePattern;
      let hit = haveParent && parent[i] === true;
      if (!hit) {
        if (pattern.exception !== matched) continue;
        hit = pattern.matches(path);
        if (!hit && !haveParent) {
          if (parentPrefixes === undefined) {
            const dir = goDir(path);
            parentPrefixes = dir === "." ? [] : prefixes(dir);
          }
          hit = parentPrefixes.some((dir) => pattern.matches(dir));
        }
      }
      info[i] = hit;
      if (hit) matched = !pattern.exception;
    }
    return { matched, info };
  }

  /**
   * Whether a walk may skip the inside of an excluded directory: true unless some exception
   * could re-include something below it. Exceptions containing glob characters (other than
   * a trailing `/*` or `/**`) force a full walk, as in BuildKit's fsutil.
   */
  canPruneExcludedDir(dir: string): boolean {
    if (!this.hasExceptions) return true;
    if (this.globExceptions) return false;
    const dirSlash = `${dir}/`;
    return !this.patterns.some((p) => p.exception && `${withoutTrailingGlob(p.text)}/`.startsWith(dirSlash));
  }

  private get globExceptions(): boolean {
    return (this.cachedGlobExceptions ??= this.patterns.some(
      (p) => p.exception && /[*[\]?^\\]/.test(withoutTrailingGlob(p.text)),
    ));
  }
  private cachedGlobExceptions: boolean | undefined;
}

function withoutTrailingGlob(p: string): string {
  if (p.endsWith("/**")) p = p.slice(0, -3);
  if (p.endsWith("/*")) p = p.slice(0, -2);
  return p;
}

/** "a/b/c" → ["a", "a/b", "a/b/c"]. */
function prefixes(dir: string): string[] {
  const out: string[] = [];
  let i = dir.indexOf("/");
  while (i !== -1) {
    out.push(dir.slice(0, i));
    i = dir.indexOf("/", i + 1);
  }
  out.push(dir);
  return out;
}

/**
 * Docker's convenience check: is `file` excluded by `patterns`? The context root itself is
 * never excluded.
 */
export function isExcludedBy(file: string, patterns: readonly string[]): boolean {
  const matcher = PatternMatcher.from(patterns);
  const cleaned = goClean(file);
  if (cleaned === ".") return false;
  return matcher.matchesOrParentMatches(cleaned);
}
