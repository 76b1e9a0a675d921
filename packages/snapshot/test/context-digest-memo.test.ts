// The digest memo (a whole unchanged context answers digestSources without per-file work) and the
// walk's raw lstat: both must see every change the per-file stat cache sees.
import { chmod, chown, lstat, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildContext, PatternMatcher, walkContextSync, type OpenContextOptions } from "@kiln/snapshot";
import { rawWalkEntries, walkContextRawAsync } from "../src/context/walk.js";
import { resetFastLstatForTests, usesRawLstat } from "../src/context/fast-lstat.js";
import { writeTree } from "./support/write-tree.js";

let dir: string;
let cacheDir: string;
let statCacheFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-memo-"));
  cacheDir = await mkdtemp(join(tmpdir(), "kiln-ctx-memo-cache-"));
  statCacheFile = join(cacheDir, "ctx.statcache");
});
afterEach(async () => {
  resetFastLstatForTests();
  await rm(dir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

const tree = (files: Record<string, string>): Promise<void> => writeTree(dir, files);

const RACY_MS = 20;
/** Waits until every file's ctime is outside the racy window (ctime can't be backdated). */
const age = (): Promise<void> => sleep(RACY_MS + 30);

async function digest(sources: string[] = ["."], extra: Partial<OpenContextOptions> = {}) {
  const reads: string[] = [];
  const ctx = await BuildContext.open(dir, { statCacheFile, racyWindowMs: RACY_MS, onContentRead: (p) => reads.push(p), ...extra });
  const d = await ctx.digestSources(sources);
  return { d, reads };
}

/** A digest computed with no cache at all: the reference every cached answer must equal. */
async function fresh(sources: string[] = ["."], extra: Partial<OpenContextOptions> = {}) {
  const ctx = await BuildContext.open(dir, { racyWindowMs: RACY_MS, ...extra });
  return ctx.digestSources(sources);
}

describe("digest memo", () => {
  beforeEach(async () => {
    await tree({ "src/a.ts": "a", "src/b.ts": "bb", "bin/run": "#!/bin/sh\n", "README.md": "r" });
    await symlink("src/a.ts", join(dir, "link"));
    await utimes(join(dir, "src/b.ts"), 1_600_000_000, 1_600_000_000); // whole seconds: restorable exactly
    await age();
  });

  it("answers an unchanged rebuild from the memo, equal to a fresh digest, paths included", async () => {
    const first = await digest();
    expect(first.reads.length).toBe(4);
    expect(JSON.parse(await readFile(`${statCacheFile}.memo`, "utf8")).digests).toBeTypeOf("object");
    // Remove the per-file stat cache: a memo hit must not need it for the digest.
    await rm(statCacheFile);
    const second = await digest();
    expect(second.reads).toEqual([]);
    expect(second.d.digest).toBe(first.d.digest);
    expect(second.d.sources).toEqual(first.d.sources);
    // paths (read only on a miss) are worked out on demand, reading what the stat cache no longer vouches for.
    const ref = await fresh();
    expect(second.d.paths).toEqual(ref.paths);
    expect(second.d.digest).toBe(ref.digest);
  });

  it("keeps one answer per source list", async () => {
    const all = await digest(["."]);
    const some = await digest(["src/*.ts", "README.md"]);
    expect(some.d.digest).not.toBe(all.d.digest);
    const again = await digest(["src/*.ts", "README.md"]);
    expect(again.reads).toEqual([]);
    expect(again.d).toMatchObject({ digest: some.d.digest, sources: some.d.sources });
    expect((await digest(["."])).d.digest).toBe(all.d.digest);
    expect(again.d.digest).toBe((await fresh(["src/*.ts", "README.md"])).digest);
  });

  const changes: [string, () => Promise<void>][] = [
    ["content with the same size", () => writeFile(join(dir, "src/b.ts"), "BB")],
    ["content with size and mtime restored", async () => {
      await writeFile(join(dir, "src/b.ts"), "XY");
      await utimes(join(dir, "src/b.ts"), 1_600_000_000, 1_600_000_000); // only ctime tells
    }],
    ["mode", () => chmod(join(dir, "bin/run"), 0o755)],
    ["owner (uid only)", async () => chown(join(dir, "src/a.ts"), 1234, (await lstat(join(dir, "src/a.ts"))).gid)],
    ["an added file", () => writeFile(join(dir, "src/c.ts"), "c")],
    ["a removed file", () => rm(join(dir, "README.md"))],
    ["a symlink target", async () => {
      await rm(join(dir, "link"));
      await symlink("src/b.ts", join(dir, "link"));
    }],
    ["a directory's mode", () => chmod(join(dir, "src"), 0o700)],
    ["the .dockerignore", () => writeFile(join(dir, ".dockerignore"), "README.md\n")],
  ];
  for (const [what, change] of changes) {
    it(`misses after a change of ${what}`, async () => {
      const before = await digest();
      await change();
      const after = await digest();
      const ref = await fresh();
      expect(after.d.digest).toBe(ref.digest);
      expect(after.d.digest).not.toBe(before.d.digest);
    });
  }

  it("is not kept while an entry changed within the racy window, and is kept once it aged", async () => {
    await writeFile(join(dir, "src/b.ts"), "B2");
    await digest(["."], { racyWindowMs: 60_000 });
    await expect(readFile(`${statCacheFile}.memo`, "utf8")).rejects.toMatchObject({ code: "ENOENT" });
    await age();
    await digest();
    const hit = await digest();
    expect(hit.reads).toEqual([]);
    expect(hit.d.digest).toBe((await fresh()).digest);
  });

  it("treats a corrupt or foreign memo file as empty", async () => {
    const first = await digest();
    await writeFile(`${statCacheFile}.memo`, "{not json");
    const second = await digest();
    expect(second.d.digest).toBe(first.d.digest);
    await writeFile(`${statCacheFile}.memo`, JSON.stringify({ format: "other", fingerprint: "x", digests: {} }));
    expect((await digest()).d.digest).toBe(first.d.digest);
  });
});

describe("walk lstat", () => {
  it("the raw binding path and lstatSync give identical entries (files, dirs, symlinks, fifos)", async () => {
    await tree({ "a/b.txt": "hello", "c": "" });
    await chmod(join(dir, "a/b.txt"), 0o4755);
    await symlink("../nowhere", join(dir, "a/dangling"));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    resetFastLstatForTests(true);
    const fast = walkContextSync(dir, PatternMatcher.from([]));
    expect(usesRawLstat(dir)).toBe(true); // Node 20's binding is there and agrees (else only slower)
    resetFastLstatForTests(false);
    const slow = walkContextSync(dir, PatternMatcher.from([]));
    expect(fast).toEqual(slow);
    expect(fast.map((e) => [e.path, e.type])).toEqual([
      ["a", "dir"],
      ["a/b.txt", "file"],
      ["a/dangling", "symlink"],
      ["c", "file"],
      ["fifo", "other"],
    ]);
    expect(fast.find((e) => e.path === "a/dangling")?.linkname).toBe("../nowhere");
    expect(fast.find((e) => e.path === "a/b.txt")?.mode).toBe(0o4755);
  });

  it("the pausing asynchronous walk gives the synchronous walk's result, exclusions included", async () => {
    // Enough entries for several pause points (one every 256 entries).
    const files: Record<string, string> = {};
    for (let d = 0; d < 6; d++) for (let f = 0; f < 120; f++) files[`d${d}/f${f}`] = "";
    files["keep/x/y"] = "";
    files["drop/z"] = "";
    await tree(files);
    const matcher = PatternMatcher.from(["drop", "keep", "!keep/x", "d5/f1*"]);
    const sync = walkContextSync(dir, matcher);
    const raw = await walkContextRawAsync(dir, matcher);
    expect(rawWalkEntries(raw)).toEqual(sync);
    expect(sync.map((e) => e.path)).toContain("keep/x/y");
    expect(sync.map((e) => e.path)).not.toContain("drop/z");
    expect(sync.filter((e) => e.path.startsWith("d5/")).length).toBe(120 - 31); // f1, f10..f19, f100..f119 excluded
  });
});
