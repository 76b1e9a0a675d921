// flushCaches() leaves a stat cache change of a few small files unwritten (rewriting every row costs more
// than hashing them again), and the digests stay right either way.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildContext } from "@kiln/snapshot";
import { writeTree } from "./support/write-tree.js";

const RACY_MS = 20;
let dir: string;
let cacheDir: string;
let statCacheFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-defer-"));
  cacheDir = await mkdtemp(join(tmpdir(), "kiln-ctx-defer-cache-"));
  statCacheFile = join(cacheDir, "ctx.statcache");
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}`;
  await writeTree(dir, files);
  await sleep(RACY_MS + 30);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

/** A build's use: digest with the save deferred, then flush. */
async function build(): Promise<{ digest: string; reads: string[] }> {
  const reads: string[] = [];
  const ctx = await BuildContext.open(dir, { statCacheFile, racyWindowMs: RACY_MS, onContentRead: (p) => reads.push(p) });
  const d = await ctx.digestSources(["."], { deferCacheSave: true });
  await ctx.flushCaches();
  return { digest: d.digest, reads };
}

const fresh = async (): Promise<string> => (await (await BuildContext.open(dir, { racyWindowMs: RACY_MS })).digestSources(["."])).digest;

describe("deferred stat cache save", () => {
  it("keeps the old file after a small edit, re-reads only that file next time, and digests stay right", async () => {
    const first = await build();
    expect(first.reads.length).toBe(300);
    const saved = await readFile(statCacheFile);

    await writeFile(join(dir, "d3/f10.txt"), "edited");
    await sleep(RACY_MS + 30);
    const second = await build();
    expect(second.reads).toEqual(["d3/f10.txt"]);
    expect(second.digest).toBe(await fresh());
    expect((await readFile(statCacheFile)).equals(saved)).toBe(true); // not rewritten

    expect((await build()).reads).toEqual([]); // the whole-context memo answers
    await rm(`${statCacheFile}.memo`);
    const third = await build();
    expect(third.reads).toEqual(["d3/f10.txt"]); // without it, the stale row costs one small read, nothing more
    expect(third.digest).toBe(second.digest);
  });

  it("writes the file when many files changed, or when a file was added", async () => {
    await build();
    const saved = await readFile(statCacheFile);
    for (let i = 0; i < 100; i++) await writeFile(join(dir, `d${i % 7}/f${i}.txt`), `edited ${i}`);
    await sleep(RACY_MS + 30);
    const many = await build();
    expect(many.reads.length).toBe(100);
    const afterMany = await readFile(statCacheFile);
    expect(afterMany.equals(saved)).toBe(false);
    expect((await build()).reads).toEqual([]);

    await writeFile(join(dir, "d1/new.txt"), "new");
    await sleep(RACY_MS + 30);
    const added = await build();
    expect(added.reads).toEqual(["d1/new.txt"]);
    expect(added.digest).toBe(await fresh());
    expect((await readFile(statCacheFile)).equals(afterMany)).toBe(false);
  });
});
