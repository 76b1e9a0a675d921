// Property tests: the lexer finishes on any input and fails only with ShellExpansionError, and a few
// algebraic facts of BuildKit's quoting hold for arbitrary text.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ShellExpansionError, envLookup, expandWord, expandWords, type ExpandOptions } from "@kiln/core";

const SYNTAX = ["$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "`", "'", '"', " ", "\t", "\n", "=", "*", "<", "@", "!", "0", "1"];
const TEXT = ["a", "B", "_", "X", "é", "한", "😀", "\u00a0", "\ufeff", "\ud800"];
const tokens = fc.constantFrom(...SYNTAX, ...TEXT, "${", "${X", "${X:-", "${X#", "${X%%", "${X//", "$X", "\\}", "\\*");
const richWord = fc.string({ unit: tokens, maxLength: 40 });

const optionsArb: fc.Arbitrary<ExpandOptions> = fc.record({
  escapeToken: fc.constantFrom<"\\" | "`">("\\", "`"),
  caseInsensitive: fc.boolean(),
  skipUnsetEnv: fc.boolean(),
  rawQuotes: fc.boolean(),
  rawEscapes: fc.boolean(),
  skipProcessQuotes: fc.boolean(),
});

const envArb = fc.record({
  X: fc.string({ unit: fc.constantFrom("a", "*", "?", "\\", "/", "$", "$0", " ", "\n", "}"), maxLength: 8 }),
  a: fc.constant(""),
});

/** Run `fn`; only ShellExpansionError may escape, and it must carry BuildKit's message shape. */
function settles(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ShellExpansionError)) throw err;
    expect(err.message.startsWith("failed to process ")).toBe(true);
  }
}

describe("shell lexer properties", () => {
  it("never throws anything but ShellExpansionError and always finishes", () => {
    fc.assert(
      fc.property(richWord, envArb, optionsArb, (word, vars, options) => {
        const lookup = envLookup(vars);
        settles(() => {
          const r = expandWord(word, lookup, options);
          expect(typeof r.result).toBe("string");
          if (!options.caseInsensitive) {
            for (const name of r.matched) expect(lookup(name)).toBeDefined();
            for (const name of r.unmatched) expect(lookup(name)).toBeUndefined();
          }
        });
        settles(() => {
          const r = expandWords(word, lookup, options);
          for (const w of r.words) expect(w.length).toBeGreaterThan(0);
        });
      }),
      { numRuns: 3000 },
    );
  });

  it("plain text without syntax characters expands to itself and splits on spaces", () => {
    const plain = fc.string({ unit: fc.constantFrom("a", "Z", "9", "_", ".", ",", "é", " ", "한"), maxLength: 30 });
    fc.assert(
      fc.property(plain, (word) => {
        expect(expandWord(word, envLookup([])).result).toBe(word);
        expect(expandWords(word, envLookup([])).words).toEqual(word.split(" ").filter((w) => w !== ""));
      }),
      { numRuns: 500 },
    );
  });

  it("escaping every character yields the text itself as one field", () => {
    const anyText = fc.string({ unit: fc.constantFrom(...SYNTAX, ...TEXT.filter((t) => t !== "\ud800" && t !== "\ufeff")), maxLength: 30 });
    fc.assert(
      fc.property(anyText, fc.constantFrom<"\\" | "`">("\\", "`"), (text, escapeToken) => {
        const escaped = [...text].map((ch) => escapeToken + ch).join("");
        expect(expandWord(escaped, envLookup([]), { escapeToken }).result).toBe(text);
        expect(expandWords(escaped, envLookup([]), { escapeToken }).words).toEqual(text === "" ? [] : [text]);
      }),
      { numRuns: 500 },
    );
  });

  it("single quotes keep everything but a single quote literally", () => {
    const inner = fc.string({ unit: fc.constantFrom(...SYNTAX.filter((c) => c !== "'"), ...TEXT.slice(0, 7)), maxLength: 30 });
    fc.assert(
      fc.property(inner, (text) => {
        expect(expandWord(`'${text}'`, envLookup(["X=1"])).result).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});
