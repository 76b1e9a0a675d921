// The walk snapshot (walk-snapshot.ts): a remembered walk is used again only when the full walk would give
// exactly the same result, and every change to a directory's listing sends the build back to the full walk.
import { chmod, mkdir, mkdtemp, readFile, realpath, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { PatternMatcher } from "@kiln/snapshot";
import { entryFromStats } from "../src/context/entry.js";
import { RAW_FIELDS, resetFastLstatForTests } from "../src/context/fast-lstat.js";
import { lstatPaths } from "../src/context/parallel-lstat.js";
import { type RawWalk, walkContextRaw } from "../src/context/walk.js";
import { loadWalkSnapshot, saveWalkSnapshot } from "../src/context/walk-snapshot.js";
import { helperThread, stopHelperThreadForTests } from "../src/util/helper-thread.js";
import { writeTree } from "./support/write-tree.js";

const RACY_MS = 20;
let dir: string;
let root: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-walk-snap-"));
  root = await realpath(dir);
  file = join(await mkdtemp(join(tmpdir(), "kiln-walk-snap-cache-")), "ctx.walk");
});
afterEach(async () => {
  resetFastLstatForTests();
  await rm(dir, { recursive: true, force: true });
  await rm(join(file, ".."), { recursive: true, force: true });
});
afterAll(async () => {
  await stopHelperThreadForTests();
});

/** Lets every directory's mtime and ctime fall outside the racy window. */
const settle = (): Promise<void> => sleep(RACY_MS + 40);

const rootEntry = async () => entryFromStats("", await stat(root));

function plain(w: RawWalk) {
  return { paths: [...w.paths], nums: Array.from(w.nums.subarray(0, w.paths.length * RAW_FIELDS)), links: [...w.links].sort((a, b) => a[0] - b[0]) };
}

/** Walks in full and writes the snapshot of that walk. */
async function save(patterns: string[] = []): Promise<RawWalk> {
  const started = Date.now();
  const walk = walkContextRaw(root, PatternMatcher.from(patterns));
  saveWalkSnapshot(file, root, await rootEntry(), patterns, walk, started, RACY_MS);
  return walk;
}

async function load(patterns: string[] = [], withHelper = false): Promise<RawWalk | undefined> {
  return loadWalkSnapshot(file, root, await rootEntry(), patterns, withHelper ? helperThread() : undefined);
}

/** The snapshot's answer must be the full walk's, whenever it gives one. */
async function expectSameAsFullWalk(patterns: string[] = [], withHelper = false): Promise<RawWalk> {
  const loaded = await load(patterns, withHelper);
  expect(loaded).toBeDefined();
  expect(plain(loaded as RawWalk)).toEqual(plain(walkContextRaw(root, PatternMatcher.from(patterns))));
  return loaded as RawWalk;
}

describe("walk snapshot", () => {
  beforeEach(async () => {
    await writeTree(dir, { "src/a.ts": "a", "src/lib/b.ts": "bb", "README.md": "r", "empty/": "" });
    await symlink("src/a.ts", join(dir, "link"));
    await settle();
  });

  it("gives the full walk's paths, lstat numbers and link targets when nothing changed", async () => {
    await save();
    const w = await expectSameAsFullWalk();
    expect(w.paths).toEqual(["README.md", "empty", "link", "src", "src/a.ts", "src/lib", "src/lib/b.ts"]);
    expect(w.links.get(2)).toBe("src/a.ts");
  });

  it("sees a file rewritten in place (its directory's listing is unchanged)", async () => {
    await save();
    await writeFile(join(dir, "src/lib/b.ts"), "changed content");
    const w = await expectSameAsFullWalk();
    expect(w.nums[w.paths.indexOf("src/lib/b.ts") * RAW_FIELDS + 3]).toBe("changed content".length);
  });

  const listingChanges: [string, () => Promise<unknown>][] = [
    ["a file added below", () => writeFile(join(dir, "src/lib/c.ts"), "c")],
    ["a file added at the root", () => writeFile(join(dir, "new.txt"), "n")],
    ["a file removed", () => rm(join(dir, "src/a.ts"))],
    ["a file renamed", () => rename(join(dir, "src/a.ts"), join(dir, "src/z.ts"))],
    ["a file replaced by rename (editor save)", async () => {
      await writeFile(join(dir, "src/.a.ts.swp"), "new a");
      await rename(join(dir, "src/.a.ts.swp"), join(dir, "src/a.ts"));
    }],
    ["a directory created", () => mkdir(join(dir, "empty/sub"))],
    ["a symlink retargeted", async () => {
      await rm(join(dir, "link"));
      await symlink("README.md", join(dir, "link"));
    }],
    ["a directory's mode changed", () => chmod(join(dir, "src/lib"), 0o700)],
    ["a directory replaced by a file", async () => {
      await rm(join(dir, "empty"), { recursive: true });
      await writeFile(join(dir, "empty"), "now a file");
    }],
  ];
  for (const [what, change] of listingChanges) {
    it(`is not used after ${what}`, async () => {
      await save();
      await change();
      expect(await load()).toBeUndefined();
      // and the next full walk's snapshot is used again once the tree has settled
      await settle();
      await save();
      await expectSameAsFullWalk();
    });
  }

  it("is not used with other ignore patterns", async () => {
    await save([]);
    expect(await load(["*.md"])).toBeUndefined();
    await save(["*.md"]);
    const w = await expectSameAsFullWalk(["*.md"]);
    expect(w.paths).not.toContain("README.md");
  });

  it("watches an excluded directory the walk entered but did not send", async () => {
    await writeTree(dir, { "ex/readme.txt": "x" });
    await settle();
    const patterns = ["ex", "!ex/*.go"];
    const walk = await save(patterns);
    expect(walk.paths).not.toContain("ex");
    await expectSameAsFullWalk(patterns);
    await writeFile(join(dir, "ex/a.go"), "package a");
    expect(await load(patterns)).toBeUndefined();
    expect(walkContextRaw(root, PatternMatcher.from(patterns)).paths).toContain("ex/a.go");
  });

  it("is not written while a directory changed within the racy window", async () => {
    await save();
    expect(await load()).toBeDefined();
    await writeFile(join(dir, "src/new.ts"), "n");
    await save(); // src changed just now: the old snapshot goes and no new one is written
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
    expect(await load()).toBeUndefined();
  });

  it("ignores a damaged snapshot file", async () => {
    await save();
    const good = await readFile(file);
    for (const at of [10, Math.floor(good.length / 2), good.length - 3]) {
      const bad = Buffer.from(good);
      bad[at] = (bad[at] as number) ^ 0x04;
      await writeFile(file, bad);
      expect(await load()).toBeUndefined();
    }
    await writeFile(file, good.subarray(0, good.length - 100));
    expect(await load()).toBeUndefined();
    await writeFile(file, good);
    await expectSameAsFullWalk();
  });

  it("is not used when the root directory itself changed", async () => {
    await save();
    await chmod(dir, 0o750);
    expect(await load()).toBeUndefined();
  });
});

describe("walk snapshot over two threads", () => {
  beforeEach(async () => {
    const files: Record<string, string> = {};
    for (let d = 0; d < 30; d++) for (let f = 0; f < 100; f++) files[`d${String(d).padStart(2, "0")}/f${f}.txt`] = `${d}/${f}`;
    await writeTree(dir, files);
    await symlink("d00/f1.txt", join(dir, "d05/link"));
    await settle();
  });

  it("gives the full walk's answer with the helper thread taking chunks", async () => {
    await save();
    await writeFile(join(dir, "d17/f3.txt"), "edited in place");
    await expectSameAsFullWalk([], true);
    // The helper thread has booted by now; a second load shares the work with it.
    await expectSameAsFullWalk([], true);
  });

  it("gives the same answer when only lstatSync is trusted (no raw binding, no helper)", async () => {
    await save();
    resetFastLstatForTests(false);
    await expectSameAsFullWalk([], true);
  });

  it("lstatPaths gives up on a path that vanished, on one thread or two", async () => {
    const walk = await save();
    const paths = [...walk.paths];
    paths.splice(2000, 0, "d99/missing.txt");
    const joined = paths.join("\0");
    expect(await lstatPaths(`${root}/`, paths, joined, undefined)).toBeUndefined();
    expect(await lstatPaths(`${root}/`, paths, joined, helperThread())).toBeUndefined();
    const ok = await lstatPaths(`${root}/`, walk.paths, walk.paths.join("\0"), helperThread());
    expect(ok && Array.from(ok.subarray(0, walk.paths.length * RAW_FIELDS))).toEqual(Array.from(walk.nums.subarray(0, walk.paths.length * RAW_FIELDS)));
    expect(await lstatPaths(`${root}/`, paths, joined, helperThread(), { helperOnly: true })).toBeUndefined();
  });

  it("gets from the helper thread alone exactly the numbers this thread's lstat gives (type, mode, ids, size, times, inode)", async () => {
    const walk = await save();
    const n = walk.paths.length;
    const byHelper = await lstatPaths(`${root}/`, walk.paths, walk.paths.join("\0"), helperThread(), { helperOnly: true });
    expect(byHelper).toBeDefined();
    expect(Array.from((byHelper as Float64Array).subarray(0, n * RAW_FIELDS))).toEqual(Array.from(walk.nums.subarray(0, n * RAW_FIELDS)));
  });

  it("finishes the helper's chunks itself when the helper thread is gone", async () => {
    const walk = await save();
    const helper = helperThread();
    await stopHelperThreadForTests();
    expect(helper.alive).toBe(false);
    const nums = await lstatPaths(`${root}/`, walk.paths, walk.paths.join("\0"), helper);
    expect(nums && Array.from(nums.subarray(0, walk.paths.length * RAW_FIELDS))).toEqual(Array.from(walk.nums.subarray(0, walk.paths.length * RAW_FIELDS)));
    expect(helperThread().alive).toBe(true); // a new one starts on demand
  });
});
