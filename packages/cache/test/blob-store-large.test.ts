import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../src/index.js";
import { digestOfContent } from "./fixtures/content.js";
import { runFixture } from "./fixtures/spawn.js";

const SIZE = 200 * 1024 * 1024;
const MEMORY_BOUND = 64 * 1024 * 1024;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-cache-large-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("large blobs", () => {
  it("streams a 200 MB blob in and out with bounded memory", async () => {
    const expected = await digestOfContent(2026, SIZE);
    const run = await runFixture("large-blob.ts", [root, "2026", String(SIZE)]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as {
      written: { digest: string; size: number };
      readDigest: string;
      readBytes: number;
      baseline: number;
      peak: number;
    };
    expect(out.written).toEqual({ digest: expected, size: SIZE });
    expect(out.readBytes).toBe(SIZE);
    expect(out.readDigest).toBe(expected);
    const store = await BlobStore.open(root);
    expect(await store.stat(expected)).toEqual({ size: SIZE });
    console.log(`child rss baseline ${(out.baseline / 2 ** 20).toFixed(1)} MiB, peak delta ${((out.peak - out.baseline) / 2 ** 20).toFixed(1)} MiB`);
    expect(out.peak - out.baseline).toBeLessThan(MEMORY_BOUND);
  });
});
