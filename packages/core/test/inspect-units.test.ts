// Docker's human-readable figures: go-units sizes and durations, docker/cli's ellipsis, Go's %g and JSON.
import { describe, expect, it } from "vitest";
import { ellipsis, formatGoG, humanDuration, humanSize } from "@kiln/core";
import { goJson } from "../src/inspect/go-json.js";
import { MergedTree } from "../src/inspect/fs-tree.js";
import { formatTable } from "../src/inspect/table.js";
import { unixSeconds } from "../src/inspect/units.js";

describe("humanSize (go-units HumanSizeWithPrecision, 3 digits)", () => {
  it.each([
    [0, "0B"],
    [7, "7B"],
    [999, "999B"],
    [1000, "1kB"],
    [1135, "1.14kB"],
    [64300, "64.3kB"],
    [100000, "100kB"],
    [1660000, "1.66MB"],
    [116561727, "117MB"],
    [1234567890123, "1.23TB"],
  ])("%d -> %s", (n, text) => {
    expect(humanSize(n)).toBe(text);
  });

  it("rounds exact halves to even and switches to exponent form at 3 integer digits, as Go's %.3g does", () => {
    expect(humanSize(1125)).toBe("1.12kB"); // 1.125 is exact in binary: a true tie
    expect(humanSize(1375)).toBe("1.38kB");
    expect(humanSize(999999)).toBe("1e+03kB");
    expect(humanSize(999500)).toBe("1e+03kB");
    expect(humanSize(999499)).toBe("999kB");
  });

  it("formats small and large magnitudes like %g", () => {
    expect(formatGoG(0.0001234, 3)).toBe("0.000123");
    expect(formatGoG(0.00001234, 3)).toBe("1.23e-05");
    expect(formatGoG(123456, 3)).toBe("1.23e+05");
    expect(formatGoG(5, 3)).toBe("5");
    expect(formatGoG(1.5, 3)).toBe("1.5");
  });
});

describe("humanDuration (go-units)", () => {
  const s = 1000;
  const min = 60 * s;
  const h = 60 * min;
  const d = 24 * h;
  it.each([
    [0, "Less than a second"],
    [1.5 * s, "1 second"],
    [59 * s, "59 seconds"],
    [60 * s, "About a minute"],
    [119 * s, "About a minute"],
    [45 * min, "45 minutes"],
    [89 * min, "About an hour"],
    [90 * min, "2 hours"],
    [47 * h, "47 hours"],
    [3 * d, "3 days"],
    [20 * d, "2 weeks"],
    [90 * d, "3 months"],
    [800 * d, "2 years"],
  ])("%d ms -> %s", (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe("ellipsis (docker/cli formatter.Ellipsis)", () => {
  it("cuts ASCII by characters and wide text by display columns", () => {
    expect(ellipsis("short", 45)).toBe("short");
    expect(ellipsis("a".repeat(45), 45)).toBe("a".repeat(45));
    expect(ellipsis("a".repeat(46), 45)).toBe(`${"a".repeat(44)}…`);
    expect(ellipsis("日本語テキスト", 5)).toBe("日本…");
    expect(ellipsis("é".repeat(10), 5)).toBe("éééé…");
    expect(ellipsis("abc", 1)).toBe("a");
  });
});

describe("Go-compatible output helpers", () => {
  it("escapes JSON the way encoding/json does", () => {
    expect(goJson({ a: "<missing> && \b\f \u2028", b: "back\\b" })).toBe('{"a":"\\u003cmissing\\u003e \\u0026\\u0026 \\u0008\\u000c \\u2028","b":"back\\\\b"}');
  });

  it("lays out tables like text/tabwriter(minwidth 10, padding 3)", () => {
    expect(formatTable([["A", "BB", "C"], ["long-value-1", "x", ""]])).toBe(`A${" ".repeat(14)}BB${" ".repeat(8)}C\nlong-value-1   x${" ".repeat(9)}\n`);
  });

  it("parses RFC 3339 timestamps to whole seconds", () => {
    expect(unixSeconds("2024-05-01T10:00:00.999999999Z")).toBe(Date.UTC(2024, 4, 1, 10) / 1000);
    expect(unixSeconds("2024-05-01T12:00:00+02:00")).toBe(Date.UTC(2024, 4, 1, 10) / 1000);
    expect(unixSeconds("yesterday")).toBeUndefined();
  });
});

describe("MergedTree", () => {
  it("clears only lower layers below an opaque directory, whatever the entry order", () => {
    const tree = new MergedTree();
    tree.putFile("e/old", { path: "e/old", size: 20, layer: 0 });
    tree.putFile("e/sub/deep", { path: "e/sub/deep", size: 5, layer: 0 });
    tree.putFile("e/new", { path: "e/new", size: 3, layer: 1 });
    const hidden = tree.clearBelow("e", 1);
    expect(hidden.map((v) => v.path).sort()).toEqual(["e/old", "e/sub/deep"]);
    expect([...tree.files()].map((f) => f.path)).toEqual(["e/new"]);
  });

  it("removes whole subtrees on a whiteout and reports replaced versions", () => {
    const tree = new MergedTree();
    tree.putFile("a/b/c", { path: "a/b/c", size: 1, layer: 0 });
    tree.putFile("a/b/d", { path: "a/b/d", size: 2, layer: 0 });
    expect(tree.putFile("a/b/c", { path: "a/b/c", size: 4, layer: 1 }).previous?.size).toBe(1);
    expect(tree.remove("a").map((v) => v.size).sort()).toEqual([2, 4]);
    expect(tree.remove("missing")).toEqual([]);
    expect([...tree.files()]).toEqual([]);
  });
});
