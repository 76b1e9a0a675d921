// canonicalJson: sorted keys at every level, undefined dropped; its fast path for flat string records
// (a COPY's per-path digest index) must write exactly what the general case writes.
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/engine/cache-key.js";

/** The general rule, written out independently. */
function reference(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference((value as Record<string, unknown>)[k])}`).join(",")}}`;
}

describe("canonicalJson", () => {
  it("equals the general rule for flat string records, sorted or not, with integer-like and odd keys", () => {
    const cases: Record<string, unknown>[] = [
      {},
      { a: "1", b: "2", c: "3" },
      { b: "2", a: "1" },
      { "10": "x", "9": "y", a: "z" }, // enumerated 9, 10, a: not in string order
      { "0": "x", "1": "y" },
      { "a/b": "1", "a-b": "2", "a.b": "3", "é": "4", "\u{1F600}": "5", 'q"uote': "6", "new\nline": "7" },
      { a: "1", b: undefined, c: "3" },
      { a: "1", b: 2 },
      { a: "1", b: { d: "4", c: "3" } },
    ];
    for (const c of cases) expect(canonicalJson(c)).toBe(reference(c));
    const big: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) big[`pkg${String(i % 50).padStart(4, "0")}/f${String(i).padStart(6, "0")}.js`] = `sha256:${i.toString(16)}`;
    const sorted = Object.fromEntries(Object.entries(big).sort(([a], [b]) => (a < b ? -1 : 1)));
    expect(canonicalJson(sorted)).toBe(reference(big));
    expect(canonicalJson(big)).toBe(reference(big));
  });
});
