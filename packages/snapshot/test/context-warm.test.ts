// Warm-rebuild machinery: the binary stat cache, the sorted synchronous walk and cached entry digests.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildContext, PatternMatcher, StatCache, comparePaths, walkContextSync, type OpenContextOptions } from "@kiln/snapshot";
import { writeTree } from "./support/write-tree.js";

let dir: string;
let cacheDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-warm-"));
  cacheDir = await mkdtemp(join(tmpdir(), "kiln-ctx-warm-cache-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

const tree = (files: Record<string, string>): Promise<void> => writeTree(dir, files);

/**
 * Lets the files' ctime fall outside the racy window (RACY_MS below) so the stat cache trusts
 * them; ctime can't be backdated, so this waits.
 */
const RACY_MS = 20;
async function age(): Promise<void> {
  await sleep(RACY_MS + 30);
}

async function digestAll(opts: OpenContextOptions) {
  const ctx = await BuildContext.open(dir, opts);
  return ctx.digestSources(["."]);
}

describe("synchronous walk", () => {
  it("emits comparePaths order without a global sort, tricky names included", async () => {
    await tree({ "a/b": "", "a-b": "", "a.b": "", "a/c/d": "", "A": "", "é/x": "", "z/a-/q": "", "z/a/q": "", "b c": "" });
    const got = walkContextSync(dir, PatternMatcher.from([])).map((e) => e.path);
    expect(got).toEqual([...got].sort(comparePaths));
    expect(got.indexOf("a/c/d")).toBeLessThan(got.indexOf("a-b"));
    expect(got).toHaveLength(15); // 9 files, 6 directories
  });

  it("keeps an excluded directory only when something below it is re-included, in order", async () => {
    await tree({ "x/keep/f": "", "x/drop/g": "", "x/h": "", "y/i": "", "w/j": "" });
    const got = walkContextSync(dir, PatternMatcher.from(["x", "!x/keep", "w"])).map((e) => e.path);
    expect(got).toEqual(["x", "x/keep", "x/keep/f", "y", "y/i"]);
  });
});

describe("binary stat cache", () => {
  it("round-trips content and entry digests; a mode change keeps the content hash but not the entry digest", async () => {
    const file = join(cacheDir, "c.statcache");
    const c = StatCache.inMemory();
    expect(c.size).toBe(0);
    const sha = "ab".repeat(32);
    const key = { size: 3, mtimeMs: 1_700_000_000_123.456, ctimeMs: 1_700_000_000_999.5, ino: 2 ** 40 + 3, dev: 66306, mode: 0o644, uid: 1000, gid: 100 };
    const persisted = await StatCache.load(file);
    persisted.record("dir/ü file", key, sha, key.ctimeMs + 5000, `sha256:${"cd".repeat(32)}`);
    persisted.record("no-meta", { size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1, dev: 1 }, "ef".repeat(32), 10_000);
    await persisted.save();
    const re = await StatCache.load(file);
    expect(re.size).toBe(2);
    expect(re.lookupEntry("dir/ü file", key)).toEqual({ sha256: sha, entryDigest: `sha256:${"cd".repeat(32)}` });
    expect(re.lookupEntry("dir/ü file", { ...key, mode: 0o755 })).toEqual({ sha256: sha, entryDigest: undefined });
    expect(re.lookupEntry("dir/ü file", { ...key, mtimeMs: key.mtimeMs + 0.001 })).toBeUndefined();
    expect(re.lookupEntry("no-meta", { size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1, dev: 1, mode: 0o644, uid: 0, gid: 0 })).toEqual({
      sha256: "ef".repeat(32),
      entryDigest: undefined,
    });
    expect(re.isDirty).toBe(false);
  });

  it("treats truncated, foreign and old JSON caches as empty", async () => {
    const file = join(cacheDir, "c.statcache");
    const c = await StatCache.load(file);
    c.record("a", { size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1, dev: 1 }, "aa".repeat(32), 10_000);
    await c.save();
    const good = await readFile(file);
    await writeFile(file, good.subarray(0, good.length - 1));
    expect((await StatCache.load(file)).size).toBe(0);
    await writeFile(file, JSON.stringify({ version: 1, entries: { a: [1, 1, 1, 1, 1, "aa", 0] } }));
    expect((await StatCache.load(file)).size).toBe(0);
    await writeFile(file, good);
    expect((await StatCache.load(file)).size).toBe(1);
  });

  it("an unchanged rebuild leaves the cache file untouched; one changed file is re-read alone", async () => {
    await tree({ "src/a.ts": "a", "src/b.ts": "b", "assets/big.bin": "x".repeat(100_000), "README.md": "r" });
    await age();
    const statCacheFile = join(cacheDir, "ctx.statcache");
    const reads: string[] = [];
    const opts: OpenContextOptions = { statCacheFile, racyWindowMs: RACY_MS, onContentRead: (p) => reads.push(p) };
    const first = await digestAll(opts);
    expect(reads.sort()).toEqual(["README.md", "assets/big.bin", "src/a.ts", "src/b.ts"]);
    const before = await stat(statCacheFile);

    reads.length = 0;
    const second = await digestAll(opts);
    expect(reads).toEqual([]);
    expect(second.digest).toBe(first.digest);
    const after = await stat(statCacheFile);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);

    await writeFile(join(dir, "src/b.ts"), "B");
    await age();
    reads.length = 0;
    const third = await digestAll(opts);
    expect(reads).toEqual(["src/b.ts"]);
    expect(third.digest).not.toBe(first.digest);
    expect(Object.entries(third.paths).filter(([p, d]) => first.paths[p] !== d).map(([p]) => p)).toEqual(["src/b.ts"]);
  });

  it("digests from cached entry digests equal digests computed from scratch, and follow mode changes", async () => {
    await tree({ "bin/run": "#!/bin/sh\n", "lib/x.js": "x", "lib/y.js": "y" });
    await age();
    const statCacheFile = join(cacheDir, "ctx.statcache");
    await digestAll({ statCacheFile, racyWindowMs: RACY_MS });
    const warm = await digestAll({ statCacheFile, racyWindowMs: RACY_MS });
    const fresh = await digestAll({});
    expect(warm.digest).toBe(fresh.digest);
    expect(warm.paths).toEqual(fresh.paths);
    expect(Object.keys(warm.paths)).toEqual(["", "bin", "bin/run", "lib", "lib/x.js", "lib/y.js"]);

    await chmod(join(dir, "bin/run"), 0o755);
    const changed = await digestAll({ statCacheFile, racyWindowMs: RACY_MS });
    expect(changed.digest).toBe((await digestAll({})).digest);
    expect(changed.digest).not.toBe(warm.digest);
  });
});
