import { chmod, chown, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildContext, StatCache, diffSourceDigests, hashFileContent, type OpenContextOptions } from "@kiln/snapshot";
import { createHash } from "node:crypto";

let dir: string;
let cacheDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-digest-"));
  cacheDir = await mkdtemp(join(tmpdir(), "kiln-ctx-cache-"));
  await mkdir(join(dir, "app/lib"), { recursive: true });
  await writeFile(join(dir, "app/main.js"), "console.log(1)\n");
  await writeFile(join(dir, "app/lib/util.js"), "export {}\n");
  await writeFile(join(dir, "README.md"), "# hi\n");
  await writeFile(join(dir, "empty"), "");
  await symlink("main.js", join(dir, "app/entry"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

async function digest(sources: string[], opts: OpenContextOptions = {}) {
  const ctx = await BuildContext.open(dir, opts);
  return ctx.digestSources(sources);
}

describe("digestSources", () => {
  it("is deterministic and gives per-path digests for every contributing entry", async () => {
    const a = await digest(["app", "README.md"]);
    const b = await digest(["app", "README.md"]);
    expect(a).toEqual(b);
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Object.keys(a.paths)).toEqual(["README.md", "app", "app/entry", "app/lib", "app/lib/util.js", "app/main.js"]);
    expect(a.sources.map((s) => s.path)).toEqual(["/app", "/README.md"]);
  });

  it("changes with content, mode and owner, and names the changed path", async () => {
    const base = await digest(["app"]);

    await writeFile(join(dir, "app/lib/util.js"), "export {} \n");
    const content = await digest(["app"]);
    expect(content.digest).not.toBe(base.digest);
    expect(diffSourceDigests(base, content)).toEqual({ added: [], removed: [], changed: ["app/lib/util.js"] });

    await chmod(join(dir, "app/main.js"), 0o755);
    const mode = await digest(["app"]);
    expect(mode.digest).not.toBe(content.digest);
    expect(diffSourceDigests(content, mode).changed).toEqual(["app/main.js"]);

    await chown(join(dir, "app/main.js"), 1000, 0);
    const uid = await digest(["app"]);
    expect(diffSourceDigests(mode, uid).changed).toEqual(["app/main.js"]);

    await chmod(join(dir, "app/lib"), 0o700);
    const dirMode = await digest(["app"]);
    expect(diffSourceDigests(uid, dirMode).changed).toEqual(["app/lib"]);

    await rm(join(dir, "app/entry"));
    await symlink("lib/util.js", join(dir, "app/entry"));
    const link = await digest(["app"]);
    expect(diffSourceDigests(dirMode, link).changed).toEqual(["app/entry"]);

    await writeFile(join(dir, "app/new.js"), "");
    const added = await digest(["app"]);
    expect(added.digest).not.toBe(link.digest);
    expect(diffSourceDigests(link, added)).toEqual({ added: ["app/new.js"], removed: [], changed: [] });
  });

  it("ignores mtime-only changes (and atime)", async () => {
    const before = await digest(["app", "README.md"]);
    const old = new Date("2001-02-03T04:05:06Z");
    await utimes(join(dir, "app/main.js"), old, old);
    await utimes(join(dir, "README.md"), old, old);
    await utimes(join(dir, "app"), old, old);
    expect((await digest(["app", "README.md"])).digest).toBe(before.digest);
  });

  it("a renamed file changes a directory digest but not a single-file digest", async () => {
    const dirBefore = await digest(["app"]);
    const fileBefore = await digest(["README.md"]);
    await writeFile(join(dir, "COPY.md"), await readFile(join(dir, "README.md")));
    const fileCopy = await digest(["COPY.md"]);
    expect(fileCopy.sources[0]?.matches[0]?.digest).toBe(fileBefore.sources[0]?.matches[0]?.digest);
    await rm(join(dir, "app/lib/util.js"));
    await writeFile(join(dir, "app/lib/util2.js"), "export {}\n");
    expect((await digest(["app"])).digest).not.toBe(dirBefore.digest);
  });

  it("wildcard names take part in the combined digest", async () => {
    await writeFile(join(dir, "a.json"), "{}");
    const one = await digest(["*.json"]);
    await writeFile(join(dir, "b.json"), "{}");
    const two = await digest(["*.json"]);
    expect(two.digest).not.toBe(one.digest);
    expect(two.sources[0]?.matches.map((m) => m.name)).toEqual(["a.json", "b.json"]);
  });

  it("a followed symlink source digests its target; symlinks inside dirs digest as links", async () => {
    const viaLink = await digest(["app/entry"]);
    const direct = await digest(["app/main.js"]);
    expect(viaLink.sources[0]?.matches[0]?.digest).toBe(direct.sources[0]?.matches[0]?.digest);
    // The destination name differs ("entry" vs "main.js"), so the source digests do too.
    expect(viaLink.sources[0]?.digest).not.toBe(direct.sources[0]?.digest);
    expect(Object.keys(viaLink.paths)).toEqual(["app/main.js"]);
  });

  it("hashes content by streaming in chunks", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    await writeFile(join(dir, "big.bin"), big);
    const sha = await hashFileContent(join(dir, "big.bin"), Buffer.alloc(4096));
    expect(sha).toBe(createHash("sha256").update(big).digest("hex"));
  });
});

describe("stat cache", () => {
  it("an unchanged rebuild re-reads no file content; a changed file is re-read alone", async () => {
    const statCacheFile = join(cacheDir, "ctx.statcache");
    // Files must be older than the racy window before the first digest to be trusted.
    await sleep(1100);
    const reads: string[] = [];
    const opts: OpenContextOptions = { statCacheFile, onContentRead: (p) => reads.push(p) };
    const first = await digest(["."], opts);
    expect(reads.sort()).toEqual(["README.md", "app/lib/util.js", "app/main.js"]); // empty file needs no read
    const saved = await StatCache.load(statCacheFile);
    expect(saved.size).toBe(3);
    expect(saved.isRacy("README.md")).toBe(false);

    reads.length = 0;
    const second = await digest(["."], opts);
    expect(reads).toEqual([]);
    expect(second.digest).toBe(first.digest);

    // Same size, new content: lstat key changes (mtime/ctime), so exactly this file is re-read.
    await writeFile(join(dir, "app/main.js"), "console.log(2)\n");
    reads.length = 0;
    const third = await digest(["."], opts);
    expect(reads).toEqual(["app/main.js"]);
    expect(third.digest).not.toBe(first.digest);
  });

  it("without a cache file every open re-reads", async () => {
    const reads: string[] = [];
    await digest(["README.md"], { onContentRead: (p) => reads.push(p) });
    await digest(["README.md"], { onContentRead: (p) => reads.push(p) });
    expect(reads).toEqual(["README.md", "README.md"]);
  });

  it("racy entries (timestamp within the window of hashing) are re-hashed next time", async () => {
    const statCacheFile = join(cacheDir, "racy.statcache");
    const reads: string[] = [];
    const opts: OpenContextOptions = { statCacheFile, onContentRead: (p) => reads.push(p) };
    await writeFile(join(dir, "fresh.txt"), "aaaa");
    await digest(["fresh.txt"], opts);
    // Written just now: a same-tick rewrite would be invisible to the lstat key, so no trust yet.
    expect((await StatCache.load(statCacheFile)).isRacy("fresh.txt")).toBe(true);
    reads.length = 0;
    await digest(["fresh.txt"], opts);
    expect(reads).toEqual(["fresh.txt"]);
  });

  it("StatCache: key fields, racy rule, prune and atomic persistence", async () => {
    const file = join(cacheDir, "sub/dir/unit.statcache");
    const c = await StatCache.load(file);
    expect(c.size).toBe(0);
    const key = { size: 4, mtimeMs: 10_000, ctimeMs: 10_000, ino: 7, dev: 1 };
    c.record("old", key, "aa", 20_000); // hashed 10 s after the last change → trusted
    c.record("racy", key, "bb", 10_500); // hashed 0.5 s after → racy
    expect(c.lookup("old", key)).toBe("aa");
    expect(c.lookup("racy", key)).toBeUndefined();
    for (const field of ["size", "mtimeMs", "ctimeMs", "ino", "dev"] as const) {
      expect(c.lookup("old", { ...key, [field]: key[field] + 1 })).toBeUndefined();
    }
    c.record("gone", key, "cc", 20_000);
    c.prune((p) => p !== "gone");
    await c.save();
    const reloaded = await StatCache.load(file);
    expect(reloaded.size).toBe(2);
    expect(reloaded.lookup("old", key)).toBe("aa");
    expect(reloaded.lookup("gone", key)).toBeUndefined();
    // A corrupt file is ignored rather than fatal (it's only an accelerator).
    await writeFile(file, "{not json");
    expect((await StatCache.load(file)).size).toBe(0);
  });
});
