import { describe, expect, it } from "vitest";
import { BadPatternError, PatternMatcher, goPathMatch, isExcludedBy, parseIgnoreFile } from "@kiln/snapshot";
import {
  compileKindCases,
  goMatchCases,
  ignoreFileCase,
  multiPatternCases,
  namedCases,
  singlePatternCases,
} from "./fixtures/context-patternmatcher-cases.js";

/** Walk-style evaluation: match each ancestor first and thread its MatchInfo down. */
function matchWithParents(m: PatternMatcher, path: string): boolean {
  const i = path.lastIndexOf("/");
  const parent = i <= 0 ? "." : path.slice(0, i).replace(/\/+$/, "") || ".";
  let info: readonly boolean[] = [];
  if (parent !== ".") {
    const dirs = parent.split("/");
    for (let k = 0; k < dirs.length; k++) info = m.matchesUsingParentResults(dirs.slice(0, k + 1).join("/"), info).info;
  }
  return m.matchesUsingParentResults(path, info).matched;
}

const allTables = [
  ...singlePatternCases.map(([p, path, want]) => [[p], path, want] as const),
  ...multiPatternCases,
];

describe("moby/patternmatcher TestMatches cases", () => {
  it.each(allTables)("%j vs %j → %s (matchesOrParentMatches)", (patterns, path, want) => {
    expect(PatternMatcher.from(patterns).matchesOrParentMatches(path)).toBe(want);
  });
  it.each(allTables)("%j vs %j → %s (matchesUsingParentResults, walked)", (patterns, path, want) => {
    expect(matchWithParents(PatternMatcher.from(patterns), path)).toBe(want);
  });
  it.each(allTables)("%j vs %j → %s (matchesUsingParentResults, no parent info)", (patterns, path, want) => {
    expect(PatternMatcher.from(patterns).matchesUsingParentResults(path).matched).toBe(want);
  });
});

describe("moby/patternmatcher named tests", () => {
  it.each(namedCases)("%s", (_name, patterns, path, want) => {
    expect(isExcludedBy(path, patterns)).toBe(want);
  });

  it("rejects a lone '!' and malformed globs", () => {
    expect(() => isExcludedBy("fileutils.go", ["!"])).toThrow(/illegal exclusion pattern/);
    expect(() => isExcludedBy("/any/path/there", ["["])).toThrow(BadPatternError);
  });

  it("cleans and trims patterns, dropping empty ones and flagging exceptions", () => {
    expect(PatternMatcher.from(["docs", "config", ""]).patterns).toHaveLength(2);
    expect(PatternMatcher.from(["docs", "  !docs/README.md"]).hasExceptions).toBe(true);
    expect(PatternMatcher.from(["docs", "!docs/README.md  "]).hasExceptions).toBe(true);
    expect(PatternMatcher.from(["docs", "config"]).hasExceptions).toBe(false);
    expect(PatternMatcher.from(["./a/../b/", "  c  "]).patterns.map(String)).toEqual(["b", "c"]);
  });

  it("a pattern that passes Go's syntax check but not Docker's compiler fails on every match", () => {
    const m = PatternMatcher.from(["[Local-Only]/"]);
    expect(() => m.matchesOrParentMatches("x")).toThrow(BadPatternError);
    expect(() => m.matchesOrParentMatches("x")).toThrow(BadPatternError);
  });

  it.each(compileKindCases)("compiles %j as a %s match (string compares where possible)", (pattern, kind) => {
    expect(PatternMatcher.from([pattern]).patterns[0]?.kind).toBe(kind);
  });
});

describe("Go filepath.Match table (through Docker's Matches)", () => {
  it.each(goMatchCases)("%j vs %j → %s (bad pattern: %s)", (pattern, path, want, bad) => {
    if (bad) expect(() => isExcludedBy(path, [pattern])).toThrow(BadPatternError);
    else expect(isExcludedBy(path, [pattern])).toBe(want);
  });

  it.each(goMatchCases.filter(([p]) => !p.includes("/")))("path.Match %j vs %j", (pattern, path, want, bad) => {
    // Same table straight through Go path.Match, used for COPY wildcards (no parent logic).
    if (bad) expect(() => goPathMatch(pattern, path)).toThrow(BadPatternError);
    else expect(goPathMatch(pattern, path)).toBe(want && !path.includes("/"));
  });
});

describe("ignorefile.ReadAll", () => {
  it("parses the upstream example", () => {
    expect(parseIgnoreFile(ignoreFileCase.content)).toEqual(ignoreFileCase.expected);
  });

  it("strips a BOM and CRLF, keeps '#' only at line start as comment, cleans ./ and /", () => {
    const text = "\ufeff# c\r\n./a/b/\r\n  # not a comment\n/c/../d\n   \n!./e\n";
    expect(parseIgnoreFile(text)).toEqual(["a/b", "# not a comment", "d", "!e"]);
  });

  it("trims like Go's TrimSpace (tabs, NBSP) but not U+FEFF inside the file", () => {
    expect(parseIgnoreFile("\ta\u00a0\n\ufeffb\n")).toEqual(["a", "\ufeffb"]);
  });

  it("empty input gives no patterns", () => {
    expect(parseIgnoreFile("")).toEqual([]);
  });
});

describe("dockerignore semantics beyond the upstream tables", () => {
  const ex = (patterns: string[], path: string) => PatternMatcher.from(parseIgnoreFile(patterns.join("\n"))).matchesOrParentMatches(path);
  it("patterns are anchored at the context root", () => {
    expect(ex(["foo"], "foo")).toBe(true);
    expect(ex(["foo"], "a/foo")).toBe(false);
    expect(ex(["/foo"], "foo")).toBe(true);
    expect(ex(["**/foo"], "a/b/foo")).toBe(true);
  });
  it("a matching parent directory excludes everything below it", () => {
    expect(ex(["node_modules"], "node_modules/x/y/z.js")).toBe(true);
    expect(ex(["*/tmp"], "a/tmp/deep/file")).toBe(true);
  });
  it("the last matching line wins", () => {
    expect(ex(["*.md", "!README.md", "README.md"], "README.md")).toBe(true);
    expect(ex(["*.md", "README.md", "!README.md"], "README.md")).toBe(false);
  });
  it("escapes and classes", () => {
    expect(ex(["\\*.txt"], "*.txt")).toBe(true);
    expect(ex(["\\*.txt"], "a.txt")).toBe(false);
    expect(ex(["[ab].txt"], "b.txt")).toBe(true);
    expect(ex(["[^ab].txt"], "b.txt")).toBe(false);
    expect(ex(["[^ab].txt"], "c.txt")).toBe(true);
  });
});
