// digestSources with a stat cache from a previous build (the walk-aligned fast path, the merge path
// after paths were added or removed, the digest memo) must give exactly what a from-scratch
// computation gives: the same digest, sources, paths (keys in the same order) and pathDigest answers.
import { createHash } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BuildContext,
  ContextTree,
  PatternMatcher,
  StatCache,
  comparePaths,
  containsWildcards,
  entryDigest,
  goClean,
  goPathMatch,
  treeDigest,
  walkContextSync,
  type ContextEntry,
  type OpenContextOptions,
  type SourcesDigest,
} from "@kiln/snapshot";
import { entryFromStats } from "../src/context/entry.js";
import { lstatSync, readFileSync } from "node:fs";
import { RAW_FIELDS, R_CTIME, R_DEV, R_GID, R_INO, R_MODE, R_MTIME, R_RDEV, R_SIZE, R_UID } from "../src/context/raw-fields.js";
import { walkContextRaw } from "../src/context/walk.js";
import { WalkIndex } from "../src/context/walk-index.js";
import { writeTree } from "./support/write-tree.js";

let dir: string;
let cacheDir: string;
let statCacheFile: string;
const RACY_MS = 20;
/** Lets every timestamp fall outside the racy window (ctime can't be backdated). */
const age = (): Promise<void> => sleep(RACY_MS + 30);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-incr-"));
  cacheDir = await mkdtemp(join(tmpdir(), "kiln-ctx-incr-cache-"));
  statCacheFile = join(cacheDir, "ctx.statcache");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

const tree = (files: Record<string, string>): Promise<void> => writeTree(dir, files);

/** A context with nested directories, names that sort differently with and without the "/" rule, links and empty files. */
async function sampleTree(): Promise<void> {
  const files: Record<string, string> = {
    "README.md": "readme",
    "NOTES.md": "notes",
    "app-x.js": "dash sorts before slash in sort(), after it in the walk",
    "app.d/z": "dot dir",
    "app/main.js": "console.log(1)\n",
    "app/empty": "",
    "app/lib/util.js": "export {}\n",
    "app/lib/deep/a/b/c.js": "deep",
    "app/lib/deep/a/b-c.js": "deep2",
    "bin/run": "#!/bin/sh\n",
    "secret.key": "k",
  };
  for (let i = 0; i < 40; i++) files[`pkg/m${String(i).padStart(2, "0")}/index.js`] = `module ${i}\n`;
  await tree(files);
  await symlink("main.js", join(dir, "app/entry"));
  await symlink("app/lib", join(dir, "lib-link"));
  await writeFile(join(dir, ".dockerignore"), "secret.key\n");
  await utimes(join(dir, "README.md"), 1_600_000_000, 1_600_000_000); // whole seconds: restorable exactly
}

// ---- reference: the straightforward computation (walk, resolve, hash every file, no cache) ----

interface RefMatch {
  path: string;
  name: string;
  resolvedPath: string;
  entry: ContextEntry;
  contents: { relPath: string; entry: ContextEntry }[];
}

function refFollow(t: ContextTree, named: string, real: string): RefMatch {
  const resolvedPath = t.resolve(real, true);
  const entry = resolvedPath === undefined ? undefined : t.get(resolvedPath);
  if (resolvedPath === undefined || !entry) throw new Error(`not found: ${named}`);
  const cut = resolvedPath === "" ? 0 : resolvedPath.length + 1;
  const contents = entry.type === "dir" ? t.descendants(resolvedPath).map((e) => ({ relPath: e.path.slice(cut), entry: e })) : [];
  return { path: named, name: named === "" ? "" : posix.basename(named), resolvedPath, entry, contents };
}

function refResolve(t: ContextTree, source: string): { path: string; matches: RefMatch[] } {
  const abs = goClean(`/${source}`);
  const rel = abs.slice(1);
  if (!containsWildcards(rel)) return { path: abs, matches: [refFollow(t, rel, rel)] };
  const parts = rel.split("/");
  const prefix = parts.slice(0, parts.findIndex(containsWildcards)).join("/");
  const real = t.resolve(prefix, true);
  const matches: RefMatch[] = [];
  if (real !== undefined && t.get(real)?.type === "dir") {
    let last: string | undefined;
    for (const e of t.descendants(real)) {
      const after = real === "" ? e.path : e.path.slice(real.length + 1);
      const named = prefix === "" ? after : `${prefix}/${after}`;
      if (last !== undefined && named.startsWith(`${last}/`)) continue;
      if (!goPathMatch(rel, named)) continue;
      last = named;
      matches.push(refFollow(t, named, e.path));
    }
  }
  return { path: abs, matches };
}

async function reference(sources: string[]): Promise<{ digest: string; sources: SourcesDigest["sources"]; paths: Record<string, string> }> {
  let patterns: string[] = [];
  try {
    patterns = readFileSync(join(dir, ".dockerignore"), "utf8").split("\n").filter((l) => l.trim() !== "");
  } catch {
    // none
  }
  const entries = walkContextSync(dir, PatternMatcher.from(patterns));
  const t = new ContextTree(entryFromStats("", lstatSync(dir)), entries);
  const d = (e: ContextEntry): string =>
    entryDigest(e, e.type === "file" ? createHash("sha256").update(readFileSync(join(dir, e.path))).digest("hex") : undefined);
  const all = createHash("sha256").update("kiln-sources-v1\0");
  const paths = new Map<string, string>();
  const out: SourcesDigest["sources"] = [];
  for (const source of sources) {
    const r = refResolve(t, source);
    const matches = r.matches.map((m) => {
      paths.set(m.resolvedPath, d(m.entry));
      for (const c of m.contents) paths.set(c.entry.path, d(c.entry));
      const digest = m.entry.type !== "dir" ? d(m.entry) : treeDigest([["", d(m.entry)], ...m.contents.map((c) => [c.relPath, d(c.entry)] as const)]);
      return { path: m.path, name: m.name, digest };
    });
    const h = createHash("sha256");
    for (const m of matches) h.update(`${m.name}\0${m.digest}\0`);
    const digest = `sha256:${h.digest("hex")}`;
    out.push({ source, path: r.path, digest, matches });
    all.update(`${r.path}\0${digest}\0`);
  }
  const sorted: Record<string, string> = {};
  for (const k of [...paths.keys()].sort()) sorted[k] = paths.get(k) as string;
  return { digest: `sha256:${all.digest("hex")}`, sources: out, paths: sorted };
}

// ---- the implementation under test ----

async function digest(sources: string[], extra: Partial<OpenContextOptions> = {}) {
  const reads: string[] = [];
  const ctx = await BuildContext.open(dir, { statCacheFile, racyWindowMs: RACY_MS, onContentRead: (p) => reads.push(p), ...extra });
  const d = await ctx.digestSources(sources);
  return { d, reads, ctx };
}

/** Asserts `got` equals the reference in every observable way, pathDigest included. */
async function expectReference(got: SourcesDigest, sources: string[]): Promise<void> {
  const ref = await reference(sources);
  expect(got.digest).toBe(ref.digest);
  expect(got.sources).toEqual(ref.sources);
  // pathDigest first (before `paths` is built), in walk order as a COPY asks, then out of order.
  const keys = Object.keys(ref.paths);
  const walkOrder = [...keys].sort((a, b) => (a === "" ? -1 : b === "" ? 1 : 0) || comparePaths(a, b));
  for (const p of walkOrder) expect(got.pathDigest(p), p).toBe(ref.paths[p]);
  for (const p of [...keys].reverse()) expect(got.pathDigest(p), p).toBe(ref.paths[p]);
  for (const p of ["nope", "secret.key", "app/nope", "zzz"]) if (!(p in ref.paths)) expect(got.pathDigest(p)).toBeUndefined();
  expect(got.paths).toEqual(ref.paths);
  expect(Object.keys(got.paths)).toEqual(keys);
}

const SOURCE_SETS: string[][] = [
  ["."], // the root
  ["app"], // a directory
  ["app/"], // a directory written with a slash
  ["app/lib/*.js", "pkg/m0*/index.js"], // wildcards
  ["README.md"], // a single file
  ["lib-link", "app/entry"], // symlinks followed to a directory and a file
  ["app", "README.md", "*.md", "app/lib"], // overlapping sources
];

const CHANGES: [string, () => Promise<void>, string[]][] = [
  ["nothing", async () => undefined, []],
  [
    "one file's content, same size and mtime restored",
    async () => {
      await writeFile(join(dir, "README.md"), "README"); // same size
      await utimes(join(dir, "README.md"), 1_600_000_000, 1_600_000_000); // only ctime tells
    },
    ["README.md"],
  ],
  ["a mode", () => chmod(join(dir, "bin/run"), 0o755), ["bin/run"]], // chmod changes ctime: re-read, as ever
  ["an added file", () => writeFile(join(dir, "app/lib/new.js"), "new"), ["app/lib/new.js"]],
  ["a removed file", () => rm(join(dir, "app/lib/util.js")), []],
  ["a newly ignored file", () => writeFile(join(dir, ".dockerignore"), "secret.key\nNOTES.md\n"), [".dockerignore"]],
  [
    "a symlink's target",
    async () => {
      await rm(join(dir, "app/entry"));
      await symlink("lib/util.js", join(dir, "app/entry"));
    },
    [],
  ],
  ["a file inside a nested directory", () => writeFile(join(dir, "app/lib/deep/a/b/c.js"), "changed deep"), ["app/lib/deep/a/b/c.js"]],
];

describe("digestSources from a previous build's stat cache equals a fresh computation", () => {
  for (const [what, change, reread] of CHANGES) {
    it(`after a change of ${what}`, async () => {
      await sampleTree();
      await age();
      for (const sources of SOURCE_SETS) await digest(sources); // prime: stat cache + memo
      await digest(["."]); // the root's files all recorded, walk indices saved
      await change();
      await age();
      const first = await digest(["."]);
      await expectReference(first.d, ["."]);
      expect(first.reads.sort()).toEqual([...reread].sort());
      for (const sources of SOURCE_SETS) {
        const got = await digest(sources);
        await expectReference(got.d, sources);
        expect(got.reads).toEqual([]); // the first digest after the change recorded everything
      }
    });
  }

  it("while files are racy: rewritten within the same timestamp tick, same size, is still seen", async () => {
    await sampleTree();
    // A wide racy window: everything hashed now is racy, so no cached row may be trusted next time.
    const racy = { racyWindowMs: 60_000 };
    for (let round = 0; round < 4; round++) {
      await writeFile(join(dir, "app/main.js"), `round ${round} ..\n`); // same size every round
      const got = await digest(["."], racy);
      await expectReference(got.d, ["."]);
      expect(got.reads).toContain("app/main.js");
    }
  });

  it("several COPYs of one context (one BuildContext) each equal the reference, memo hits included", async () => {
    await sampleTree();
    await age();
    const ctx = await BuildContext.open(dir, { statCacheFile, racyWindowMs: RACY_MS });
    for (const sources of SOURCE_SETS) await expectReference(await ctx.digestSources(sources, { deferCacheSave: true }), sources);
    await ctx.flushCaches();
    await writeFile(join(dir, "pkg/m07/index.js"), "changed");
    await age();
    const again = await BuildContext.open(dir, { statCacheFile, racyWindowMs: RACY_MS });
    for (const sources of SOURCE_SETS) await expectReference(await again.digestSources(sources), sources);
    // Unchanged now and not racy: answered by the memo, whose pathDigest/paths are worked out on demand.
    const memo = await BuildContext.open(dir, { statCacheFile, racyWindowMs: RACY_MS });
    for (const sources of SOURCE_SETS) await expectReference(await memo.digestSources(sources), sources);
  });

  it("a large context: one changed file is the only one read, and results equal the reference", async () => {
    const files: Record<string, string> = {};
    for (let d = 0; d < 12; d++) for (let f = 0; f < 60; f++) files[`d${d}/s${f % 3}/f${f}.txt`] = `content ${d} ${f}`;
    await tree(files);
    await age();
    await digest(["."]);
    await digest(["d3/"]);
    await writeFile(join(dir, "d7/s1/f10.txt"), "changed!");
    await age();
    const got = await digest(["."]);
    expect(got.reads).toEqual(["d7/s1/f10.txt"]);
    await expectReference(got.d, ["."]);
    const sub = await digest(["d7/s1", "d3/"]);
    expect(sub.reads).toEqual([]);
    await expectReference(sub.d, ["d7/s1", "d3/"]);
  });

  it("reads a stat cache written by an older kiln (format 2) without re-reading unchanged files", async () => {
    await tree({ "a.txt": "a", "b/c.txt": "c", "b/d.txt": "d" });
    await age();
    const first = await digest(["."]);
    expect(first.reads.length).toBe(3);
    // Rewrite the cache as format 2 would have: unordered rows, permission bits where st_mode is now kept.
    const cache = await StatCache.load(statCacheFile);
    expect(cache.size).toBe(3);
    await writeFile(statCacheFile, formatV2([
      ["b/d.txt", join(dir, "b/d.txt")],
      ["a.txt", join(dir, "a.txt")],
      ["b/c.txt", join(dir, "b/c.txt")],
    ]));
    const v2 = await StatCache.load(statCacheFile);
    expect(v2.size).toBe(3);
    const second = await digest(["."]);
    expect(second.reads).toEqual([]);
    await expectReference(second.d, ["."]);
    const third = await digest(["b"]);
    expect(third.reads).toEqual([]);
  });
});

describe("stat cache rows matched to a walk", () => {
  /** align() of the saved cache against a fresh walk: each file's row, and whether the saved walk indices were used. */
  async function alignSaved(): Promise<{ rows: Map<string, string | undefined>; byIndex: boolean }> {
    const cache = await StatCache.load(statCacheFile);
    const raw = walkContextRaw(dir, PatternMatcher.from([]));
    const index = new WalkIndex(entryFromStats("", lstatSync(dir)), raw);
    const rows = cache.align(raw.paths, raw.nums, index.pathsDigest);
    const byIndex = !cache.isDirty; // a merge (paths changed) marks the cache for a rewrite with new indices
    const out = new Map<string, string | undefined>();
    raw.paths.forEach((p, k) => {
      if (index.isFile(k)) out.set(p, cache.entryDigestAt(rows[k] as number, p, raw.nums, k * RAW_FIELDS));
    });
    return { rows: out, byIndex };
  }

  it("uses the saved walk indices while no path was added or removed, and a merge otherwise; both find every row", async () => {
    await tree({ "a/x.txt": "x", "a/y.txt": "y", "b.txt": "b", "c/d/e.txt": "e" });
    await age();
    const first = await digest(["."]);
    const same = await alignSaved();
    expect(same.byIndex).toBe(true);
    expect([...same.rows.entries()]).toEqual(Object.entries(first.d.paths).filter(([p]) => same.rows.has(p)));
    expect(same.rows.size).toBe(4);

    await writeFile(join(dir, "a/w.txt"), "w"); // a new path: indices from the old walk no longer apply
    const merged = await alignSaved();
    expect(merged.byIndex).toBe(false);
    expect(merged.rows.get("a/w.txt")).toBeUndefined();
    for (const p of ["a/x.txt", "a/y.txt", "b.txt", "c/d/e.txt"]) expect(merged.rows.get(p)).toBe(first.d.paths[p]);
  });
});

/** A version 2 stat cache file with rows for `files` ([path, absolute path]) in the given order. */
function formatV2(files: [string, string][]): Buffer {
  const header = Buffer.from("kiln-statcache 2 kiln-entry-v1\n", "latin1");
  const count = files.length;
  const paths = Buffer.from(files.map(([p]) => p).join("\0"), "utf8");
  const numsAt = (header.length + 8 + 7) & ~7;
  const shasAt = numsAt + count * 64;
  const buf = Buffer.alloc(shasAt + count * 129 + paths.length);
  header.copy(buf, 0);
  buf.writeUInt32LE(count, header.length);
  buf.writeUInt32LE(paths.length, header.length + 4);
  files.forEach(([p, abs], i) => {
    const st = lstatSync(abs);
    [st.size, st.mtimeMs, st.ctimeMs, st.ino, st.dev, st.mode & 0o7777, st.uid, st.gid].forEach((v, k) => buf.writeDoubleLE(v, numsAt + (i * 8 + k) * 8));
    const e = entryFromStats(p, st);
    const sha = createHash("sha256").update(readFileSync(abs)).digest("hex");
    buf.write(sha, shasAt + i * 64, "latin1");
    buf.write(entryDigest(e, sha).slice(7), shasAt + count * 64 + i * 64, "latin1");
    buf[shasAt + count * 128 + i] = 0;
  });
  paths.copy(buf, shasAt + count * 129);
  return buf;
}

describe("raw walk columns", () => {
  it("raw-fields.ts offsets name the fields entryFromRaw reads", async () => {
    await tree({ "a/b.txt": "hello", "c": "" });
    await symlink("a/b.txt", join(dir, "l"));
    await chmod(join(dir, "a/b.txt"), 0o4751);
    const raw = walkContextRaw(dir, PatternMatcher.from([]));
    const entries = walkContextSync(dir, PatternMatcher.from([]));
    expect(raw.paths).toEqual(entries.map((e) => e.path));
    entries.forEach((e, i) => {
      const o = i * RAW_FIELDS;
      expect([raw.nums[o + R_MODE], raw.nums[o + R_UID], raw.nums[o + R_GID], raw.nums[o + R_SIZE], raw.nums[o + R_MTIME]]).toEqual([
        e.rawMode,
        e.uid,
        e.gid,
        e.size,
        e.mtimeMs,
      ]);
      expect([raw.nums[o + R_CTIME], raw.nums[o + R_INO], raw.nums[o + R_DEV], raw.nums[o + R_RDEV]]).toEqual([e.ctimeMs, e.ino, e.dev, e.rdev]);
    });
    expect(await readFile(join(dir, "a/b.txt"), "utf8")).toBe("hello");
  });
});
