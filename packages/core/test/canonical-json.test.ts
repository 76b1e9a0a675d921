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

describe("file indexes as canonical JSON text", () => {
  it("a COPY's pathsJson() is canonicalJson(paths), names that sort oddly included", async () => {
    const { mkdtemp, mkdir, rm, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { BuildContext } = await import("@kiln/snapshot");
    const { resolveContextSources } = await import("../src/engine/steps/copy.js");
    const dir = await mkdtemp(join(tmpdir(), "kiln-paths-json-"));
    try {
      for (const name of ["a/b", "a-b", "a.b", "10", "9", "é", 'q"uote', "sub/deep/x", "sub-x"]) {
        await mkdir(join(dir, name, ".."), { recursive: true });
        await writeFile(join(dir, name), name);
      }
      const ctx = await BuildContext.open(dir);
      for (const sources of [["."], ["sub"], ["a*"]]) {
        const instr = { kind: "copy", sources, dest: "/x/", excludes: [], contents: [], original: "COPY" } as unknown as Parameters<typeof resolveContextSources>[1];
        const r = await resolveContextSources(ctx, instr, 0);
        expect(r.pathsJson()).toBe(canonicalJson(r.paths));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("explainMiss gives the same files-changed answer from JSON texts as from records", async () => {
    const { explainMiss } = await import("../src/engine/explain.js");
    let seed = 11;
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) % n);
    const names = ["a", "a/b", "a-b", "10", "9", "é", 'q"uote', "x\\y", "sub/deep", "sub-x", "tab\there"];
    for (let round = 0; round < 200; round++) {
      const before: Record<string, string> = {};
      const after: Record<string, string> = {};
      for (const n of names) {
        const p = rnd(4);
        if (p !== 0) before[n] = `d${rnd(3)}`;
        if (p !== 1) after[n] = rnd(4) === 0 ? `d${rnd(3)}` : (before[n] ?? "new");
      }
      const inputs = { instruction: "COPY . .", filesDigest: "sha256:b" } as never;
      const prevInputs = { instruction: "COPY . .", filesDigest: "sha256:a" } as never;
      const fromRecords = explainMiss(inputs, prevInputs, before, after);
      const fromJson = explainMiss(inputs, prevInputs, canonicalJson(before), canonicalJson(after));
      expect(fromJson).toEqual(fromRecords);
    }
    // Not canonical (unsorted keys): still right, through the general path.
    const unsorted = '{"b":"1","a":"2"}';
    expect(explainMiss({ filesDigest: "x" } as never, { filesDigest: "y" } as never, unsorted, canonicalJson({ a: "2", b: "3" }))).toEqual({ kind: "files-changed", added: [], removed: [], changed: ["b"] });
  });
});
