/** The streaming tar reader behind the image harness, checked against archives written by GNU tar. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "./support/process.js";
import { readTar, type TarHeader } from "./support/tar.js";
import { requireTool } from "./support/tools.js";

let dir: string;
const longDir = "d".repeat(70) + "/" + "e".repeat(70);
const longTarget = "t".repeat(150);
const content = "hello tar\n".repeat(1000);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-tar-test-"));
  const src = path.join(dir, "src");
  await mkdir(path.join(src, longDir), { recursive: true });
  await writeFile(path.join(src, longDir, "file.txt"), content, { mode: 0o640 });
  await link(path.join(src, longDir, "file.txt"), path.join(src, "hard"));
  await symlink(longTarget, path.join(src, "long-link"));
  await writeFile(path.join(src, "attr"), "x");
  await run(requireTool("setfattr"), ["-n", "user.kiln", "-v", "value-1", path.join(src, "attr")]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(archive: string): Promise<Map<string, TarHeader & { sha256?: string }>> {
  const out = new Map<string, TarHeader & { sha256?: string }>();
  for await (const { header, body } of readTar(createReadStream(archive))) {
    const h = createHash("sha256");
    let n = 0;
    for await (const c of body) {
      h.update(c);
      n += c.length;
    }
    expect(n).toBe(header.size);
    out.set(header.path.replace(/^\.\//, "").replace(/\/$/, ""), { ...header, ...(n ? { sha256: h.digest("hex") } : {}) });
  }
  return out;
}

const sha = (s: string): string => createHash("sha256").update(s).digest("hex");

describe.each(["gnu", "posix"])("readTar on GNU tar --format=%s", (format) => {
  it("reads long names, long link targets, hard links, modes, owners and xattrs", async () => {
    const archive = path.join(dir, `${format}.tar`);
    await run("tar", [
      `--format=${format}`,
      ...(format === "posix" ? ["--xattrs", "--xattrs-include=user.*"] : []),
      "--owner=1234",
      "--group=3000000",
      "--numeric-owner",
      "-C",
      path.join(dir, "src"),
      "-cf",
      archive,
      ".",
    ]);
    const entries = await collect(archive);
    const file = entries.get(`${longDir}/file.txt`);
    expect(file).toMatchObject({ type: "file", mode: 0o640, uid: 1234, gid: 3000000, size: content.length });
    expect(file?.sha256).toBe(sha(content));
    expect(entries.get("long-link")).toMatchObject({ type: "symlink", linkname: longTarget });
    // tar stores the second name of a hard-linked inode as a link to the first one it wrote.
    const hard = entries.get("hard");
    const other = hard?.type === "hardlink" ? hard : entries.get(`${longDir}/file.txt`);
    expect(other?.type).toBe("hardlink");
    expect([`./${longDir}/file.txt`, "./hard"]).toContain(other?.linkname);
    expect(entries.get(longDir)).toMatchObject({ type: "dir" });
    if (format === "posix") expect(entries.get("attr")?.xattrs).toEqual({ "user.kiln": "value-1" });
  });
});

it("skips bodies the consumer does not read", async () => {
  const archive = path.join(dir, "skip.tar");
  await run("tar", ["-C", path.join(dir, "src"), "-cf", archive, "."]);
  const names: string[] = [];
  for await (const { header } of readTar(createReadStream(archive))) names.push(header.path);
  expect(names).toContain(`./${longDir}/file.txt`);
  expect(names).toContain("./attr");
});
