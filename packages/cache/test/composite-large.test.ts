// A 200 MB composite of 200 parts (the engine's large COPY layer) streams with bounded memory.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../src/index.js";
import { digestOfContent, generateContent } from "./fixtures/content.js";
import { runFixture } from "./fixtures/spawn.js";

const SIZE = 200 * 1024 * 1024;
const PART = 1024 * 1024;
const MEMORY_BOUND = 64 * 1024 * 1024;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-composite-large-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("large composite blobs", () => {
  it("streams a 200 MB composite of 200 parts, whole and in a range, with bounded memory", async () => {
    const expected = await digestOfContent(77, SIZE);
    // The same bytes without the first and last byte, for the ranged read.
    const inner = createHash("sha256");
    let off = 0;
    for await (const chunk of generateContent(77, SIZE)) {
      inner.update(chunk.subarray(off === 0 ? 1 : 0, off + chunk.length === SIZE ? chunk.length - 1 : chunk.length));
      off += chunk.length;
    }
    const run = await runFixture("composite-large.ts", [root, "77", String(SIZE), String(PART)]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as {
      digest: string;
      parts: number;
      read: { digest: string; bytes: number };
      range: { digest: string; bytes: number };
      verified: boolean;
      baseline: number;
      peak: number;
    };
    expect(out.digest).toBe(expected);
    expect(out.parts).toBe(SIZE / PART);
    expect(out.read).toEqual({ digest: expected, bytes: SIZE });
    expect(out.range).toEqual({ digest: `sha256:${inner.digest("hex")}`, bytes: SIZE - 2 });
    expect(out.verified).toBe(true);
    const store = await BlobStore.open(root);
    expect(await store.stat(expected)).toEqual({ size: SIZE });
    expect(store.filePath(expected)).toBeUndefined();
    console.log(`child rss baseline ${(out.baseline / 2 ** 20).toFixed(1)} MiB, peak delta ${((out.peak - out.baseline) / 2 ** 20).toFixed(1)} MiB`);
    expect(out.peak - out.baseline).toBeLessThan(MEMORY_BOUND);
  });
});
