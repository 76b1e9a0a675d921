import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseGoDuration } from "../src/dockerfile/instruction-duration.js";
import { parseFlags } from "../src/dockerfile/instruction-flags.js";
import { editDistance, suggest } from "../src/dockerfile/suggest.js";

const UNITS: [string, bigint][] = [
  ["ns", 1n],
  ["us", 1_000n],
  ["µs", 1_000n],
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
];

describe("properties", () => {
  it("a Go duration is the sum of its integer components", () => {
    const part = fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(...UNITS));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), fc.boolean(), (parts, negative) => {
        const text = (negative ? "-" : "") + parts.map(([n, [unit]]) => `${n}${unit}`).join("");
        const total = parts.reduce((sum, [n, [, scale]]) => sum + BigInt(n) * scale, 0n);
        expect(parseGoDuration(text)).toBe(negative ? -total : total);
      }),
    );
  });

  it("edit distance is a metric and suggestions stay within distance 2", () => {
    const word = fc.string({ unit: fc.constantFrom("a", "b", "c", "d"), maxLength: 6 });
    fc.assert(
      fc.property(word, word, word, (a, b, c) => {
        expect(editDistance(a, b)).toBe(editDistance(b, a));
        expect(editDistance(a, a)).toBe(0);
        expect(editDistance(a, c)).toBeLessThanOrEqual(editDistance(a, b) + editDistance(b, c));
      }),
    );
    fc.assert(
      fc.property(word, fc.array(word, { maxLength: 5 }), (value, options) => {
        const match = suggest(value, options, true);
        if (options.includes(value)) expect(match).toBeUndefined();
        else if (match !== undefined) {
          expect(options).toContain(match);
          expect(editDistance(value, match)).toBeLessThan(3);
          for (const o of options) expect(editDistance(value, o)).toBeGreaterThanOrEqual(editDistance(value, match));
        } else for (const o of options) expect(editDistance(value, o)).toBeGreaterThanOrEqual(3);
      }),
    );
  });

  it("flag order does not matter and repeatable flags keep their order", () => {
    const spec = { from: "string", link: "bool", exclude: "strings" } as const;
    const flag = fc.oneof(
      fc.constant("--from=x"),
      fc.constantFrom("--link", "--link=true", "--link=false"),
      fc.string({ unit: fc.constantFrom("a", "*", "/"), minLength: 1, maxLength: 4 }).map((p) => `--exclude=${p}`),
    );
    fc.assert(
      fc.property(fc.array(flag, { maxLength: 6 }), (flags) => {
        const singles = flags.filter((f) => !f.startsWith("--exclude"));
        const unique = new Set(singles.map((f) => f.split("=")[0]));
        if (unique.size !== singles.length) {
          expect(() => parseFlags(flags, spec)).toThrow(/duplicate flag specified/);
          return;
        }
        const parsed = parseFlags(flags, spec);
        const reversed = parseFlags([...flags].reverse(), spec);
        expect(reversed.strings).toEqual(parsed.strings);
        expect(reversed.bools).toEqual(parsed.bools);
        const excludes = flags.filter((f) => f.startsWith("--exclude=")).map((f) => f.slice("--exclude=".length));
        expect(parsed.lists.get("exclude") ?? []).toEqual(excludes);
      }),
    );
  });
});
