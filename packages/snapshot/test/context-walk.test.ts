import { mkdtemp, rm, symlink, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildContext, BuildContextError, walkContext, PatternMatcher } from "@kiln/snapshot";
import { writeTree } from "./support/write-tree.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-ctx-walk-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tree = (files: Record<string, string>): Promise<void> => writeTree(dir, files);

const paths = (ctx: BuildContext) => ctx.entries().map((e) => e.path);

describe("BuildContext walk", () => {
  it("lists everything (Dockerfile and .dockerignore included) in tree order", async () => {
    await tree({ Dockerfile: "FROM scratch\n", ".dockerignore": "", "a/b/c.txt": "c", "a-b": "x", "a/z": "z" });
    const ctx = await BuildContext.open(dir);
    expect(paths(ctx)).toEqual([".dockerignore", "Dockerfile", "a", "a/b", "a/b/c.txt", "a/z", "a-b"]);
  });

  it("applies .dockerignore, including re-inclusion inside an excluded directory", async () => {
    await tree({
      ".dockerignore": "# build outputs\nbuild\n!build/keep/**\nnode_modules\n*.log\n!important.log\n",
      "build/out.o": "o",
      "build/keep/a.txt": "a",
      "build/keep/sub/b.txt": "b",
      "node_modules/x/index.js": "x",
      "src/main.ts": "m",
      "src/debug.log": "d",
      "debug.log": "d",
      "important.log": "i",
    });
    const ctx = await BuildContext.open(dir);
    expect(paths(ctx)).toEqual([
      ".dockerignore",
      "build",
      "build/keep",
      "build/keep/a.txt",
      "build/keep/sub",
      "build/keep/sub/b.txt",
      "important.log",
      "src",
      "src/debug.log", // *.log is anchored at the root
      "src/main.ts",
    ]);
    expect(ctx.isIgnored("build/out.o")).toBe(true);
    expect(ctx.isIgnored("build/keep/a.txt")).toBe(false);
    expect(ctx.get("node_modules")).toBeUndefined();
  });

  it("walks into excluded dirs when a glob exception could match below them", async () => {
    await tree({ "vendor/a/keep.go": "k", "vendor/a/drop.txt": "d", "vendor/b/keep.go": "k", "top.go": "t" });
    const ctx = await BuildContext.open(dir, { ignorePatterns: ["vendor", "!vendor/*/*.go"] });
    expect(paths(ctx)).toEqual(["top.go", "vendor", "vendor/a", "vendor/a/keep.go", "vendor/b", "vendor/b/keep.go"]);
  });

  it("prunes excluded directories only when no exception can reach below them", async () => {
    await tree({ "secret/inner/file": "s", "pub/file": "p" });
    const m = PatternMatcher.from(["secret", "!pub/file"]);
    expect(m.canPruneExcludedDir("secret")).toBe(true);
    expect(PatternMatcher.from(["secret", "!secret/inner/file"]).canPruneExcludedDir("secret")).toBe(false);
    expect(PatternMatcher.from(["secret", "!**/file"]).canPruneExcludedDir("secret")).toBe(false);
    expect(PatternMatcher.from(["secret"]).canPruneExcludedDir("secret")).toBe(true);
    expect((await walkContext(dir, m)).map((e) => e.path)).toEqual(["pub", "pub/file"]);
    const reinclude = PatternMatcher.from(["secret", "!secret/inner/file"]);
    expect((await walkContext(dir, reinclude)).map((e) => e.path)).toEqual([
      "pub", "pub/file", "secret", "secret/inner", "secret/inner/file",
    ]);
  });

  it("an allow-list ignore file ('*' then exceptions) keeps only the exceptions", async () => {
    await tree({ "src/a.ts": "", "src/deep/b.ts": "", "docs/x.md": "", Dockerfile: "", ".dockerignore": "*\n!src\n!Dockerfile\n" });
    const ctx = await BuildContext.open(dir);
    expect(paths(ctx)).toEqual(["Dockerfile", "src", "src/a.ts", "src/deep", "src/deep/b.ts"]);
  });

  it("prefers <Dockerfile>.dockerignore next to the Dockerfile over .dockerignore", async () => {
    await tree({ ".dockerignore": "a\n", "docker/app.Dockerfile": "FROM scratch", "docker/app.Dockerfile.dockerignore": "b\n", a: "", b: "" });
    const withDf = await BuildContext.open(dir, { dockerfile: "docker/app.Dockerfile" });
    expect(withDf.ignorePatterns).toEqual(["b"]);
    expect(withDf.dockerignorePath).toBe(join(withDf.root, "docker/app.Dockerfile.dockerignore"));
    expect(paths(withDf)).toContain("a");
    expect(paths(withDf)).not.toContain("b");
    const plain = await BuildContext.open(dir, { dockerfile: join(dir, "Dockerfile") });
    expect(plain.ignorePatterns).toEqual(["a"]);
    const explicit = await BuildContext.open(dir, { dockerignoreFile: "docker/app.Dockerfile.dockerignore" });
    expect(explicit.ignorePatterns).toEqual(["b"]);
    await expect(BuildContext.open(dir, { dockerignoreFile: "missing.ignore" })).rejects.toThrow(BuildContextError);
  });

  it("records type, full mode bits, owner, size, link target; never follows symlinks", async () => {
    await tree({ "bin/tool": "#!/bin/sh\n", "data/big": "x".repeat(5000) });
    await chmod(join(dir, "bin/tool"), 0o4755);
    await chmod(join(dir, "data"), 0o1777);
    await symlink("../bin/tool", join(dir, "data/link"));
    await symlink("/etc", join(dir, "etc-link"));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    execFileSync("chown", ["1234:5678", join(dir, "data/big")]);
    const ctx = await BuildContext.open(dir);
    const tool = ctx.get("bin/tool");
    expect(tool).toMatchObject({ type: "file", mode: 0o4755, size: 10, uid: 0 });
    expect(ctx.get("data")).toMatchObject({ type: "dir", mode: 0o1777 });
    expect(ctx.get("data/big")).toMatchObject({ type: "file", uid: 1234, gid: 5678, size: 5000 });
    expect(ctx.get("data/link")).toMatchObject({ type: "symlink", linkname: "../bin/tool" });
    expect(ctx.get("etc-link")).toMatchObject({ type: "symlink", linkname: "/etc" });
    expect(ctx.get("etc-link/passwd")).toBeUndefined();
    expect(ctx.get("fifo")).toMatchObject({ type: "other" });
    expect(tool?.ino).toBeGreaterThan(0);
    expect(typeof tool?.mtimeMs).toBe("number");
  });

  it("rejects a context that is not a directory", async () => {
    await tree({ f: "" });
    await expect(BuildContext.open(join(dir, "f"))).rejects.toThrow(BuildContextError);
    await expect(BuildContext.open(join(dir, "nope"))).rejects.toThrow(BuildContextError);
  });

  it("honours an AbortSignal", async () => {
    await tree({ "a/b": "" });
    const ac = new AbortController();
    ac.abort();
    await expect(BuildContext.open(dir, { signal: ac.signal })).rejects.toThrow();
  });
});
