import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { ExtractError, UnsafePathError, extractLayer, opaqueEntry, whiteoutEntry, writeLayerTar, type LayerEntry } from "../src/index.js";
import { BLOCK, encodeUstar, paddingFor } from "../src/layer/tar-format.js";
import { T0, dir, file, symlink } from "./layer-helpers.js";

const work = mkdtempSync(join(tmpdir(), "kiln-extract-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let dest = "";
let outside = "";
let n = 0;
beforeEach(() => {
  n++;
  dest = join(work, `dest${n}`, "root");
  outside = join(work, `dest${n}`, "outside");
  mkdirSync(dest, { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, "secret"), "secret");
});

interface Raw {
  name: string;
  type: string;
  content?: string;
  linkname?: string;
  mode?: number;
}

/** Hand-built tar, so names the writer would refuse (.., absolute) can be fed to the extractor. */
function rawTar(entries: Raw[]): Readable {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.content ?? "");
    parts.push(
      encodeUstar({
        name: Buffer.from(e.name),
        mode: e.mode ?? 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: 1_700_000_000,
        typeflag: e.type,
        ...(e.linkname !== undefined ? { linkname: Buffer.from(e.linkname) } : {}),
      }),
      data,
      Buffer.alloc(paddingFor(data.length)),
    );
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Readable.from([Buffer.concat(parts)]);
}

/** Every path below `root`, sorted, for "nothing changed" assertions. */
function listTree(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).sort();
}

async function expectRefused(entries: Raw[], nameInError: string): Promise<void> {
  const err = await extractLayer(rawTar(entries), dest).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(UnsafePathError);
  expect(String(err)).toContain(nameInError);
  expect(listTree(outside)).toEqual(["secret"]);
  expect(readFileSync(join(outside, "secret"), "utf8")).toBe("secret");
  expect(readdirSync(join(dest, ".."))).toEqual(["outside", "root"]);
}

describe("extractLayer refuses entries that escape the destination", () => {
  it('refuses ".." components', async () => {
    await expectRefused([{ name: "ok", type: "0", content: "x" }, { name: "../outside/pwned", type: "0", content: "x" }], "../outside/pwned");
    await expectRefused([{ name: "a/../../escape", type: "0", content: "x" }], "a/../../escape");
    await expectRefused([{ name: "../", type: "5" }], "..");
  });

  it('refuses whiteouts naming "." or ".." (which would delete the destination or its parent)', async () => {
    await expectRefused([{ name: ".wh...", type: "0" }], ".wh...");
    await expectRefused([{ name: "sub/.wh..", type: "0" }], "sub/.wh..");
    await expect(extractLayer(rawTar([{ name: ".wh...", type: "0" }]), dest, { whiteouts: "overlay" })).rejects.toBeInstanceOf(UnsafePathError);
    expect(existsSync(dest)).toBe(true);
  });

  it("refuses absolute paths", async () => {
    await expectRefused([{ name: `${outside}/pwned`, type: "0", content: "x" }], `${outside}/pwned`);
  });

  it("refuses to write through a relative symlink that climbs out", async () => {
    await expectRefused(
      [
        { name: "esc", type: "2", linkname: "../outside" },
        { name: "esc/pwned", type: "0", content: "x" },
      ],
      "esc/pwned",
    );
    await expectRefused(
      [
        { name: "sub/", type: "5" },
        { name: "sub/up", type: "2", linkname: "../../.." },
        { name: "hop", type: "2", linkname: "sub/up" },
        { name: "hop/x/pwned", type: "0", content: "x" },
      ],
      "hop/x/pwned",
    );
  });

  it("re-roots absolute symlinks in parent paths instead of following them on the host", async () => {
    await extractLayer(rawTar([{ name: "abs", type: "2", linkname: outside }, { name: "abs/pwned", type: "0", content: "inside" }]), dest);
    expect(listTree(outside)).toEqual(["secret"]);
    expect(readFileSync(join(dest, outside, "pwned"), "utf8")).toBe("inside");
    expect(readlinkSync(join(dest, "abs"))).toBe(outside);
  });

  it("replaces a symlink at the final component instead of writing through it", async () => {
    await extractLayer(
      rawTar([
        { name: "f", type: "2", linkname: join(outside, "secret") },
        { name: "f", type: "0", content: "replaced" },
        { name: "d", type: "2", linkname: outside },
        { name: "d/", type: "5" },
      ]),
      dest,
    );
    expect(readFileSync(join(outside, "secret"), "utf8")).toBe("secret");
    expect(lstatSync(join(dest, "f")).isFile()).toBe(true);
    expect(readFileSync(join(dest, "f"), "utf8")).toBe("replaced");
    expect(lstatSync(join(dest, "d")).isDirectory()).toBe(true);
    expect(listTree(outside)).toEqual(["secret"]);
  });

  it("refuses hardlinks to targets outside, through escaping symlinks, or not yet extracted", async () => {
    await expectRefused([{ name: "h", type: "1", linkname: "../outside/secret" }], '"h"');
    await expectRefused([{ name: "h", type: "1", linkname: join(outside, "secret") }], '"h"');
    await expectRefused(
      [
        { name: "esc", type: "2", linkname: "../outside" },
        { name: "h", type: "1", linkname: "esc/secret" },
      ],
      '"h"',
    );
    await expectRefused(
      [
        { name: "h", type: "1", linkname: "later" },
        { name: "later", type: "0", content: "x" },
      ],
      "not been extracted",
    );
  });
});

describe("extractLayer materialises entries", () => {
  it("applies ownership, setuid/sticky modes, mtimes, hardlinks, symlinks, fifos, devices and xattrs", async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const entries: LayerEntry[] = [
      dir("usr", { mtimeMs: T0 - 5000 }),
      dir("usr/bin", { mode: 0o750, uid: 1000, gid: 1000, mtimeMs: T0 - 4000 }),
      file("usr/bin/su", "su-binary", { mode: 0o4755, uid: 1000, gid: 1001, xattrs: { "security.capability": cap, "user.note": Buffer.from("hello") } }),
      { path: "usr/bin/su2", type: "hardlink", mode: 0o4755, uid: 1000, gid: 1001, mtimeMs: T0, linkname: "usr/bin/su" },
      dir("tmp", { mode: 0o1777 }),
      symlink("usr/bin/sh", "busybox", { mtimeMs: T0 - 1000 }),
      { path: "run/fifo", type: "fifo", mode: 0o620, uid: 0, gid: 0, mtimeMs: T0 },
      { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, mtimeMs: T0, devmajor: 1, devminor: 3 },
    ];
    const result = await extractLayer(writeLayerTar(entries), dest, { allowDevices: true });
    expect(result.skipped).toEqual([]);
    const su = statSync(join(dest, "usr/bin/su"));
    expect(su.mode & 0o7777).toBe(0o4755);
    expect([su.uid, su.gid]).toEqual([1000, 1001]);
    expect(su.mtimeMs).toBe(T0);
    expect(su.nlink).toBe(2);
    expect(statSync(join(dest, "usr/bin/su2")).ino).toBe(su.ino);
    const bin = statSync(join(dest, "usr/bin"));
    expect([bin.mode & 0o7777, bin.uid, bin.mtimeMs]).toEqual([0o750, 1000, T0 - 4000]);
    expect(statSync(join(dest, "usr")).mtimeMs).toBe(T0 - 5000);
    expect(statSync(join(dest, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(readlinkSync(join(dest, "usr/bin/sh"))).toBe("busybox");
    expect(lstatSync(join(dest, "usr/bin/sh")).mtimeMs).toBe(T0 - 1000);
    expect(lstatSync(join(dest, "run/fifo")).isFIFO()).toBe(true);
    expect(statSync(join(dest, "run")).mode & 0o7777).toBe(0o755); // implicit parent
    const devNull = lstatSync(join(dest, "dev/null"));
    expect(devNull.isCharacterDevice()).toBe(true);
    expect(devNull.rdev).toBe((1 << 8) | 3);
    const attrs = execFileSync("getfattr", ["--absolute-names", "-d", "-m", "-", "-e", "hex", join(dest, "usr/bin/su")], { encoding: "utf8" });
    expect(attrs).toContain(`security.capability=0x${cap.toString("hex")}`);
    expect(attrs).toContain(`user.note=0x${Buffer.from("hello").toString("hex")}`);
  });

  it("stops at the first entry after an abort", async () => {
    const ac = new AbortController();
    const entries: LayerEntry[] = [file("one", "1"), file("two", "2")];
    let n = 0;
    const layer = writeLayerTar(entries).on("data", () => {
      if (++n === 1) ac.abort(new Error("cancelled"));
    });
    await expect(extractLayer(layer, dest, { signal: ac.signal })).rejects.toThrow("cancelled");
    expect(existsSync(join(dest, "two"))).toBe(false);
  });

  it("skips device nodes unless allowDevices", async () => {
    const result = await extractLayer(writeLayerTar([{ path: "dev/sda", type: "block", mode: 0o660, uid: 0, gid: 0, mtimeMs: T0, devmajor: 8, devminor: 0 }]), dest);
    expect(existsSync(join(dest, "dev/sda"))).toBe(false);
    expect(result.skipped.map((s) => s.path)).toEqual(["dev/sda"]);
  });

  it("reads compressed layers and reports an entry whose parent is a file", async () => {
    const gz = execFileSync("gzip", ["-c"], { input: readFileSync(await tarFile([file("a", "1"), file("a2", "2")])) });
    await extractLayer(Readable.from([gz]), dest);
    expect(readFileSync(join(dest, "a2"), "utf8")).toBe("2");
    const err = await extractLayer(rawTar([{ name: "a/b", type: "0", content: "x" }]), dest).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ExtractError);
    expect(String(err)).toContain('"a/b"');
  });
});

async function tarFile(entries: LayerEntry[]): Promise<string> {
  const p = join(work, `layer-${++n}.tar`);
  const { createWriteStream } = await import("node:fs");
  const { pipeline } = await import("node:stream/promises");
  await pipeline(writeLayerTar(entries), createWriteStream(p));
  return p;
}

describe("whiteouts", () => {
  const lower: LayerEntry[] = [
    dir("a"),
    file("a/1", "1"),
    file("a/2", "2"),
    dir("b"),
    file("b/x", "x"),
    dir("c"),
    dir("c/deep"),
    file("c/deep/f", "f"),
    file("c/keep-name", "lower"),
  ];

  it('"apply" deletes whited-out paths and clears opaque directories of lower entries only', async () => {
    await extractLayer(writeLayerTar(lower), dest);
    const upper: LayerEntry[] = [whiteoutEntry("a/1"), whiteoutEntry("b"), dir("c"), opaqueEntry("c"), file("c/new", "new"), file("c/keep-name", "upper")];
    await extractLayer(writeLayerTar(upper), dest, { whiteouts: "apply" });
    expect(listTree(dest)).toEqual(["a", "a/2", "c", "c/keep-name", "c/new"]);
    expect(readFileSync(join(dest, "c/keep-name"), "utf8")).toBe("upper");
  });

  it('"apply" keeps this layer\'s entries whatever the order of the markers in the tar', async () => {
    await extractLayer(writeLayerTar(lower), dest);
    await extractLayer(
      rawTar([
        { name: "c/", type: "5", mode: 0o755 },
        { name: "c/own", type: "0", content: "own" },
        { name: "c/deep/", type: "5", mode: 0o755 },
        { name: "c/deep/mine", type: "0", content: "m" },
        { name: "c/.wh..wh..opq", type: "0" },
        { name: "a/new", type: "0", content: "n" },
        { name: "a/.wh.new", type: "0" },
      ]),
      dest,
    );
    expect(listTree(dest)).toEqual(["a", "a/1", "a/2", "a/new", "b", "b/x", "c", "c/deep", "c/deep/mine", "c/own"]);
  });

  it('"overlay" writes 0/0 character devices and trusted.overlay.opaque', async () => {
    await extractLayer(writeLayerTar([whiteoutEntry("a/1"), dir("c"), opaqueEntry("c"), file("c/new", "n")]), dest, { whiteouts: "overlay" });
    const wh = lstatSync(join(dest, "a/1"));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    const attr = execFileSync("getfattr", ["--absolute-names", "-n", "trusted.overlay.opaque", "--only-values", join(dest, "c")], { encoding: "utf8" });
    expect(attr).toBe("y");
    expect(listTree(dest)).toEqual(["a", "a/1", "c", "c/new"]);
  });

  it('"keep" extracts the markers as plain files', async () => {
    await extractLayer(writeLayerTar(lower), dest);
    await extractLayer(writeLayerTar([whiteoutEntry("a/1"), opaqueEntry("c")]), dest, { whiteouts: "keep" });
    expect(lstatSync(join(dest, "a/.wh.1")).isFile()).toBe(true);
    expect(lstatSync(join(dest, "c/.wh..wh..opq")).size).toBe(0);
    expect(existsSync(join(dest, "a/1"))).toBe(true);
    expect(existsSync(join(dest, "c/deep/f"))).toBe(true);
  });
});
