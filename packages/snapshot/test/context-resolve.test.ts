import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadPatternError, BuildContext, SourceNotFoundError, SymlinkLoopError } from "@kiln/snapshot";

let dir: string;
let outside: string;
let ctx: BuildContext;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-resolve-"));
  outside = await mkdtemp(join(tmpdir(), "kiln-ctx-outside-"));
  await writeFile(join(outside, "secret"), "outside");
  const files: Record<string, string> = {
    "package.json": "{}",
    "tsconfig.json": "{}",
    "notes.txt": "n",
    "a.txt": "a",
    "b.txt": "b",
    "c.txt": "c",
    "src/app/x": "1",
    "src/lib/x": "2",
    "src/lib/y": "3",
    "src/misc/x/inner": "4",
    "docs/guide.md": "g",
    "docs/private/key": "k",
    "ignored.json": "i",
    "x": "root-x",
  };
  for (const [p, c] of Object.entries(files)) {
    await mkdir(join(dir, p, ".."), { recursive: true });
    await writeFile(join(dir, p), c);
  }
  await symlink("a.txt", join(dir, "link-to-a"));
  await symlink("src/lib", join(dir, "link-to-lib"));
  await symlink("../../x", join(dir, "docs/up-too-far")); // resolves to "x" at the root, not outside
  await symlink(join(outside, "secret"), join(dir, "abs-out")); // absolute: re-rooted at the context
  await symlink("../a.txt", join(dir, "docs/rel-a"));
  await symlink("docs/private/key", join(dir, "link-to-ignored"));
  await symlink("loop2", join(dir, "loop1"));
  await symlink("loop1", join(dir, "loop2"));
  await symlink("nowhere", join(dir, "dangling"));
  await writeFile(join(dir, ".dockerignore"), "docs/private\nignored.json\n");
  ctx = await BuildContext.open(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const names = (sources: string[]) =>
  ctx.resolveSources(sources).flatMap((s) => s.matches.map((m) => m.path));

describe("resolveSources", () => {
  it("resolves a plain file", () => {
    const [r] = ctx.resolveSources(["package.json"]);
    expect(r).toMatchObject({ source: "package.json", path: "/package.json", wildcard: false });
    expect(r?.matches).toHaveLength(1);
    expect(r?.matches[0]).toMatchObject({ path: "package.json", name: "package.json", resolvedPath: "package.json", contents: [] });
    expect(r?.matches[0]?.entry.type).toBe("file");
  });

  it("cleans ./, trailing slashes and leading /", () => {
    expect(names(["./src/app/", "/a.txt", "src/../b.txt"])).toEqual(["src/app", "a.txt", "b.txt"]);
  });

  it("a directory yields its contents relative to it, without ignored paths", () => {
    const [r] = ctx.resolveSources(["docs"]);
    const m = r?.matches[0];
    expect(m?.entry.type).toBe("dir");
    expect(m?.contents.map((c) => c.relPath)).toEqual(["guide.md", "rel-a", "up-too-far"]);
    expect(m?.contents.find((c) => c.relPath === "rel-a")?.entry).toMatchObject({ type: "symlink", linkname: "../a.txt" });
  });

  it("'.' is the whole (filtered) context", () => {
    const [r] = ctx.resolveSources(["."]);
    const rel = r?.matches[0]?.contents.map((c) => c.relPath) ?? [];
    expect(rel).toContain("src/lib/y");
    expect(rel).toContain(".dockerignore");
    expect(rel).not.toContain("ignored.json");
    expect(rel).not.toContain("docs/private/key");
  });

  it("wildcards: *.json, src/*/x, [ab].txt (Go path.Match per segment)", () => {
    expect(names(["*.json"])).toEqual(["package.json", "tsconfig.json"]);
    expect(names(["src/*/x"])).toEqual(["src/app/x", "src/lib/x", "src/misc/x"]);
    expect(names(["[ab].txt"])).toEqual(["a.txt", "b.txt"]);
    expect(names(["[^ab].txt"])).toEqual(["c.txt"]);
    expect(names(["?.txt"])).toEqual(["a.txt", "b.txt", "c.txt"]);
    expect(names(["src/*"])).toEqual(["src/app", "src/lib", "src/misc"]); // * never crosses a slash
    const [dirMatch] = ctx.resolveSources(["src/misc/*"]);
    expect(dirMatch?.matches[0]?.contents.map((c) => c.relPath)).toEqual(["inner"]);
  });

  it("a wildcard through a symlinked prefix matches with the prefix as written", () => {
    const [r] = ctx.resolveSources(["link-to-lib/*"]);
    expect(r?.matches.map((m) => [m.path, m.resolvedPath])).toEqual([
      ["link-to-lib/x", "src/lib/x"],
      ["link-to-lib/y", "src/lib/y"],
    ]);
  });

  it("a missing source fails naming it like BuildKit; an empty wildcard is allowed unless asked", () => {
    expect(() => ctx.resolveSources(["nope.txt"])).toThrow(SourceNotFoundError);
    expect(() => ctx.resolveSources(["nope.txt"])).toThrow('failed to compute cache key: "/nope.txt": not found');
    const [empty] = ctx.resolveSources(["*.nomatch"]);
    expect(empty?.matches).toEqual([]);
    expect(() => ctx.resolveSources(["*.nomatch"], { allowEmptyWildcard: false })).toThrow('"/*.nomatch": not found');
    expect(() => ctx.resolveSources(["[.txt"])).toThrow(BadPatternError);
  });

  it("ignored files are invisible, directly or through a link", () => {
    expect(() => ctx.resolveSources(["ignored.json"])).toThrow('"/ignored.json": not found');
    expect(() => ctx.resolveSources(["docs/private/key"])).toThrow('"/docs/private/key": not found');
    expect(() => ctx.resolveSources(["link-to-ignored"])).toThrow('"/link-to-ignored": not found');
    expect(names(["*.json"])).not.toContain("ignored.json");
  });

  it("paths escaping the context are clamped to its root (BuildKit), not rejected", () => {
    const [r] = ctx.resolveSources(["../x"]);
    expect(r?.path).toBe("/x");
    expect(r?.matches[0]?.resolvedPath).toBe("x");
    expect(names(["/../../a.txt"])).toEqual(["a.txt"]);
    expect(() => ctx.resolveSources(["../package.json.missing"])).toThrow('"/package.json.missing": not found');
  });

  it("a source that is a symlink is followed inside the context (file or directory)", () => {
    const [f] = ctx.resolveSources(["link-to-a"]);
    expect(f?.matches[0]).toMatchObject({ path: "link-to-a", name: "link-to-a", resolvedPath: "a.txt" });
    expect(f?.matches[0]?.entry.type).toBe("file");
    const [d] = ctx.resolveSources(["link-to-lib"]);
    expect(d?.matches[0]?.entry.type).toBe("dir");
    expect(d?.matches[0]?.contents.map((c) => c.relPath)).toEqual(["x", "y"]);
    // A wildcard match that is a symlink is followed as well.
    const [w] = ctx.resolveSources(["link-to-?"]);
    expect(w?.matches.map((m) => m.resolvedPath)).toEqual(["a.txt"]);
  });

  it("links pointing outside never leave the context", () => {
    // "../../x" from docs/ clamps at the root → the context's own "x".
    const [up] = ctx.resolveSources(["docs/up-too-far"]);
    expect(up?.matches[0]?.resolvedPath).toBe("x");
    // An absolute target is looked up inside the context, where it does not exist.
    expect(() => ctx.resolveSources(["abs-out"])).toThrow('"/abs-out": not found');
    // Inside a copied directory, links stay links.
    const [docs] = ctx.resolveSources(["docs"]);
    expect(docs?.matches[0]?.contents.find((c) => c.relPath === "up-too-far")?.entry.type).toBe("symlink");
  });

  it("dangling links and loops", () => {
    expect(() => ctx.resolveSources(["dangling"])).toThrow(SourceNotFoundError);
    // BuildKit follows every top-level wildcard match, so `COPY * /` trips on the first broken one.
    expect(() => ctx.resolveSources(["*"])).toThrow('"/abs-out": not found');
    expect(() => ctx.resolveSources(["loop?"])).toThrow(SymlinkLoopError);
    expect(() => ctx.resolveSources(["loop1"])).toThrow(SymlinkLoopError);
  });
});

describe("streamSources", () => {
  it("lists what resolveSources lists, contents made while iterated (fresh context: nothing cached)", async () => {
    const fresh = await BuildContext.open(dir);
    for (const sources of [["."], ["src"], ["link-to-lib"], ["*.txt", "docs"], ["src/*", "a.txt"]]) {
      const streamed = fresh.streamSources(sources).map((s) => ({ ...s, matches: s.matches.map((m) => ({ ...m, contents: [...m.contents] })) }));
      expect(streamed).toEqual(ctx.resolveSources(sources));
    }
  });
});
