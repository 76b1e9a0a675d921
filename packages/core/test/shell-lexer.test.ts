// Unit tests for the BuildKit-compatible shell lexer. Expected values follow BuildKit's
// lex_test.go (TestProcessWithMatches, TestShellParserMandatoryEnvVars) and were cross-checked
// against BuildKit's lex.go compiled with Go.
import { describe, expect, it } from "vitest";
import { ShellExpansionError, envLookup, expandWord, expandWords, type EnvLookup, type ExpandOptions } from "@kiln/core";

const env = (vars: Record<string, string>) => envLookup(vars);

function errorOf(word: string, lookup: EnvLookup, options?: ExpandOptions): ShellExpansionError {
  try {
    expandWord(word, lookup, options);
  } catch (err) {
    if (err instanceof ShellExpansionError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(word)} to fail`);
}

describe("escape token", () => {
  const home = env({ PWD: "/home" });

  it("backtick escapes $, quotes and spaces while backslash stays literal", () => {
    const opts: ExpandOptions = { escapeToken: "`" };
    expect(expandWord("he`$PWD", home, opts).result).toBe("he$PWD");
    expect(expandWord("C:\\dir\\$PWD", home, opts).result).toBe("C:\\dir\\/home");
    expect(expandWord('"C:\\dir `"q`" `$PWD"', home, opts).result).toBe('C:\\dir "q" $PWD');
    expect(expandWords('he`$PWD `"x`" C:\\dir', home, opts).words).toEqual(["he$PWD", '"x"', "C:\\dir"]);
    expect(expandWords("a` b c", home, opts).words).toEqual(["a b", "c"]);
  });

  it("backslash is the default escape and a trailing one vanishes", () => {
    expect(expandWord("he\\$PWD", home).result).toBe("he$PWD");
    expect(expandWord("he\\\\$PWD", home).result).toBe("he\\/home");
    expect(expandWord("a\\", home).result).toBe("a");
    expect(expandWord("a`", home).result).toBe("a`");
    expect(expandWord("a`", home, { escapeToken: "`" }).result).toBe("a");
  });
});

describe("matched and unmatched names", () => {
  const sets = (word: string, vars: Record<string, string>) => {
    const r = expandWord(word, env(vars));
    return { result: r.result, matched: [...r.matched].sort(), unmatched: [...r.unmatched].sort() };
  };

  it("records names found and not found, including inside operands", () => {
    expect(sets("x", { DUMMY: "d" })).toEqual({ result: "x", matched: [], unmatched: [] });
    expect(sets("x ${UNUSED}", { DUMMY: "d" })).toEqual({ result: "x ", matched: [], unmatched: ["UNUSED"] });
    expect(sets("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", { FOO: "xxx", BAR: "" })).toEqual({
      result: "xxx  ccc",
      matched: ["BAR", "FOO"],
      unmatched: ["BAZ"],
    });
    expect(sets("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", { FOO: "xxx", BAR: "" }).result).toBe("xxx bbb ccc");
    expect(sets("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", { FOO: "xxx", BAR: "" }).result).toBe("aaa bbb ");
    expect(sets("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", { FOO: "xxx", BAR: "" }).result).toBe("aaa  ");
    expect(sets("${ABC:-.}${FOO%x}${ABC:-.}", { FOO: "xxyy" })).toEqual({ result: ".xxyy.", matched: ["FOO"], unmatched: ["ABC"] });
    expect(sets("${FOO#$BAR}", { FOO: "xxyy", BAR: "x" })).toEqual({ result: "xyy", matched: ["BAR", "FOO"], unmatched: [] });
  });

  it("counts positional and special parameters as looked-up names", () => {
    expect(sets("$1${@}$#", {})).toEqual({ result: "", matched: [], unmatched: ["#", "1", "@"] });
  });

  it("still records names looked up before an error", () => {
    let caught: unknown;
    try {
      expandWord("${K:-${Q?}}", env({ K: "k" }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ShellExpansionError);
    expect((caught as ShellExpansionError).reason).toBe("Q: is not allowed to be unset");
  });

  it("expands the BuildKit release file name pattern", () => {
    const word = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    const base = { VERSION: "v1.2.3", TARGETOS: "linux" };
    expect(expandWord(word, env({ ...base, TARGETARCH: "arm", TARGETVARIANT: "v7" })).result).toBe("something-v1.2.3.linux-arm-v7.tar.gz");
    expect(expandWord(word, env({ ...base, TARGETARCH: "arm64", TARGETVARIANT: "" })).result).toBe("something-v1.2.3.linux-arm64.tar.gz");
    const unset = expandWord(word, env({ ...base, TARGETARCH: "arm64" }));
    expect(unset.result).toBe("something-v1.2.3.linux-arm64.tar.gz");
    expect([...unset.unmatched]).toEqual(["TARGETVARIANT"]);
  });
});

describe("errors", () => {
  const none = env({});
  const cases: [string, Record<string, string>, string][] = [
    ["${}", {}, "syntax error: bad substitution"],
    ["${:}", {}, "syntax error: bad substitution"],
    ["${{aaa}", {}, "syntax error: bad substitution"],
    ["${aaa", {}, "unsupported modifier (\uFFFD) in substitution"],
    ["${aaa:", {}, "syntax error: missing '}'"],
    ["${aaa:-bbb", {}, "syntax error: missing '}'"],
    ["${", {}, "syntax error: missing '}'"],
    ["${V:=x}", { V: "1" }, "unsupported modifier (:=) in substitution"],
    ["${V=x}", { V: "1" }, "unsupported modifier (=) in substitution"],
    ["${V:YYY}", { V: "1" }, "unsupported modifier (:Y) in substitution"],
    ["${.}", {}, "unsupported modifier (.) in substitution"],
    ["${FOO:#}", {}, "unsupported modifier (:#) in substitution"],
    ["${FOO:%%}", {}, "unsupported modifier (:%) in substitution"],
    ["${NULL:?}", { NULL: "" }, "NULL: is not allowed to be empty"],
    ["${X?}", {}, "X: is not allowed to be unset"],
    ["${X:?}", {}, "X: is not allowed to be unset"],
    ["'abc", {}, "unexpected end of statement while looking for matching single-quote"],
    ['"abc', {}, "unexpected end of statement while looking for matching double-quote"],
    ['"abc\\', {}, "unexpected end of statement while looking for matching double-quote"],
    ["${FOO//ww}", { FOO: "xxyy" }, "syntax error: missing '/' in ${}"],
    ["${V#\\x}", { V: "1" }, "invalid pattern (\\x) in substitution: invalid escape '\\x'"],
    ["${V%ab\\x}", { V: "1" }, "invalid pattern (\\xba) in substitution: invalid escape '\\x'"],
    ["${K:-${}", { K: "k" }, "syntax error: bad substitution"],
  ];

  it.each(cases)("%s fails like BuildKit", (word, vars, reason) => {
    const err = errorOf(word, env(vars));
    expect(err.reason).toBe(reason);
    expect(err.word).toBe(word);
    expect(err.message).toBe(`failed to process ${JSON.stringify(word)}: ${reason}`);
  });

  it("quotes the word in messages as Go's %q does", () => {
    expect(errorOf("\t'\u00a0", none).message).toBe(
      'failed to process "\\t\'\\u00a0": unexpected end of statement while looking for matching single-quote',
    );
  });

  it("uses the custom message of ${V:?msg} and ${V?msg}, expanded", () => {
    const noEmpty = "${VAR:?message here$ARG}";
    const noUnset = "${VAR?message here$ARG}";
    expect(expandWord(noEmpty, envLookup(["VAR=plain", "ARG=x"])).result).toBe("plain");
    expect(errorOf(noEmpty, envLookup(["VAR=", "ARG=x"])).reason).toBe("VAR: message herex");
    expect(errorOf(noEmpty, envLookup(["ARG=x"])).reason).toBe("VAR: message herex");
    expect(expandWord(noUnset, envLookup(["VAR=plain", "ARG=x"])).result).toBe("plain");
    expect(expandWord(noUnset, envLookup(["VAR=", "ARG=x"])).result).toBe("");
    expect(errorOf(noUnset, envLookup(["ARG=x"])).reason).toBe("VAR: message herex");
  });

  it("skipUnsetEnv keeps references to unset names instead of failing", () => {
    const r = expandWord("$U ${U} ${U:-d} ${U/a/b} ${U#x} ${U?} ${U:=x} $K", envLookup(["K=k"]), { skipUnsetEnv: true });
    expect(r.result).toBe("$U ${U} ${U:-d} ${U/a/b} ${U#x} ${U?} ${U:=x} k");
    expect(errorOf("${K:=x}", envLookup(["K=k"]), { skipUnsetEnv: true }).reason).toBe("unsupported modifier (:=) in substitution");
  });

  it("rejects absurd nesting with a ShellExpansionError instead of overflowing the stack", () => {
    const deep = "${A:-".repeat(5000) + "x" + "}".repeat(5000);
    expect(errorOf(deep, none).reason).toMatch(/nested/);
    const fine = "${A:-".repeat(200) + "x" + "}".repeat(200);
    expect(expandWord(fine, none).result).toBe("x");
  });
});

describe("patterns", () => {
  const cases: [string, Record<string, string>, string][] = [
    ["${FOO#()[]{\\}^$.\\*\\?|\\\\}", { FOO: "()[]{}^$.*?|\\x" }, "x"],
    ["${FOO%%\\**}", { FOO: "xx**" }, "xx"],
    ["${FOO#*x*y}", { FOO: "xxyy" }, "y"],
    ["${FOO#*}", { FOO: "xxyy" }, "xxyy"],
    ["${FOO##*x}", { FOO: "xxyy" }, "yy"],
    ["${FOO#?\\?}", { FOO: "???y" }, "?y"],
    ["${FOO%%\\**\\*}", { FOO: "a***yy*" }, "a"],
    ["${V##*/}:${V%/*}:${V%%.*}:${V#*.}", { V: "/usr/lib/x.tar.gz" }, "x.tar.gz:/usr/lib:/usr/lib/x:tar.gz"],
    ["${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", { FOO: "/foo*/*/*.txt", NEEDLE: "\\*/" }, "/foo.*/*.txt - /foo..*.txt"],
    ["${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", { FOO: "/tmp/tmp/bar.txt", NEEDLE: "/tmp" }, "/tmp/bar.txt - /bar.txt"],
    ["${FOO//\\//\\/}", { FOO: "/tmp/foo.txt" }, "\\/tmp\\/foo.txt"],
    ["${FOO/$BAR/ww}", { FOO: "xxyy", BAR: "" }, "wwxxyy"],
    ["${FOO///}", { FOO: "xxyy" }, "xxyy"],
    // Go's ReplaceAll does not replace the empty match right after a match.
    ["${V//*/x}", { V: "abc" }, "x"],
    // With // the replacement is a Go regexp template ($0 = match, $$ = $), with / it is literal.
    ["${V//b/<$R>}", { V: "abcb", R: "$0$$${0}$1$x$" }, "a<b$b$>c<b$b$>"],
    ["${V/b/<$R>}", { V: "abcb", R: "$0$$" }, "a<$0$$>cb"],
    // Wildcards do not cross newlines (Go's `.`).
    ["${V/?/x}-${V#*}-${V##*}", { V: "\nb" }, "\nx-\nb-\nb"],
    ["${V%%한*}", { V: "ab한국어" }, "ab"],
  ];
  it.each(cases)("%s", (word, vars, expected) => {
    expect(expandWord(word, env(vars)).result).toBe(expected);
  });

  it("stays fast on patterns with many stars", () => {
    const v = "a".repeat(3000);
    expect(expandWord("${V##*a*a*a*a*a*a*a*a*a*a*b}", env({ V: v })).result).toBe(v);
    expect(expandWord("${V//a*a*a*a*a*a*b/x}", env({ V: v })).result).toBe(v);
  });
});

describe("field splitting (ProcessWords)", () => {
  it("splits on unquoted whitespace, Unicode spaces included", () => {
    expect(expandWords("a\u00a0b\u2003c\td", env({})).words).toEqual(["a", "b", "c", "d"]);
    expect(expandWords('a "b  c" \'d e\' ""', env({})).words).toEqual(["a", "b  c", "d e"]);
    expect(expandWords("", env({})).words).toEqual([]);
  });

  it("keeps `<< WORD` together as BuildKit's heredoc detection needs", () => {
    expect(expandWords("cat <<  EOF | x", env({})).words).toEqual(["cat", "<<  EOF", "|", "x"]);
  });

  it("reproduces BuildKit's shared word buffer: a ${} operand drops the text before it", () => {
    expect(expandWords("abc${X:-def} ghi", env({})).words).toEqual(["def", "ghi"]);
    expect(expandWords("abc ${X:-d e f}g", env({})).words).toEqual(["abc", "d", "e", "fg"]);
  });

  it("raw quote and escape modes keep the characters", () => {
    expect(expandWords("a 'b c' \"d\\\"e\" $X\\ y", envLookup(["X=1"]), { rawQuotes: true }).words).toEqual([
      "a",
      "'b c'",
      '"d"e"',
      "1 y",
    ]);
    expect(expandWord('a \\$X "\\$X" \\t', envLookup(["X=1"]), { rawEscapes: true }).result).toBe("a \\$X \\$X \\t");
    expect(expandWord("it's \"$X\"", envLookup(["X=1"]), { skipProcessQuotes: true }).result).toBe('it\'s "1"');
  });
});

describe("names and lookups", () => {
  it("reads positional, special and Unicode-digit parameters as BuildKit does", () => {
    const e = envLookup(["KOREAN=한국어"]);
    expect(expandWord("he$1x $@@@ $001aaa $.x $KOREAN", e).result).toBe("hex @@ aaa $.x 한국어");
    expect(expandWord("$١٢x ${١٢:-d}", e).result).toBe("x d");
  });

  it("skips a byte-order mark only at the very start", () => {
    expect(expandWord("\ufeff$K\ufeff", envLookup(["K=k"])).result).toBe("k\ufeff");
  });

  it("envLookup: last one wins, bare names are empty, records ignore the prototype", () => {
    const list = envLookup(["A=1", "B", "A=2", "C=x=y"]);
    expect([list("A"), list("B"), list("C"), list("D")]).toEqual(["2", "", "x=y", undefined]);
    const rec = envLookup({ A: "1" });
    expect([rec("A"), rec("constructor"), rec("toString")]).toEqual(["1", undefined, undefined]);
    const map = envLookup(new Map([["M", "m"]]));
    expect(map("M")).toBe("m");
  });

  it("caseInsensitive matches names as Windows does", () => {
    const e = envLookup(["PWD=/home", "path=C:\\bin"]);
    expect(expandWord("he$pwd.", e).result).toBe("he.");
    expect(expandWord("he$pwd.", e, { caseInsensitive: true }).result).toBe("he/home.");
    expect(expandWord("$PATH", e, { caseInsensitive: true }).result).toBe("C:\\bin");
    const plain: EnvLookup = (name) => (name === "PWD" ? "/p" : undefined);
    expect(expandWord("$pwd", plain, { caseInsensitive: true }).result).toBe("/p");
  });
});
