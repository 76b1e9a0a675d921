import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import {
  LayerEntryError,
  MEDIA_TYPE_LAYER_TAR,
  MEDIA_TYPE_LAYER_TAR_GZIP,
  opaqueEntry,
  whiteoutEntry,
  writeLayerBlob,
  writeLayerTar,
  type LayerEntry,
} from "../src/index.js";
import { T0, collect, dir, file, memorySink, sha256, symlink } from "./layer-helpers.js";

const work = mkdtempSync(join(tmpdir(), "kiln-layer-write-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Lists a tar with GNU tar (a real consumer): "-tv" lines, and the bare names. */
function gnuList(tar: Buffer, verbose: boolean): string[] {
  const p = join(work, `list-${Math.random().toString(36).slice(2)}.tar`);
  writeFileSync(p, tar);
  const out = execFileSync("tar", [verbose ? "-tvf" : "-tf", p, "--numeric-owner", "--quoting-style=literal"], {
    encoding: "utf8",
    env: { ...process.env, TZ: "UTC", LC_ALL: "C" },
  });
  return out.split("\n").filter((l) => l !== "");
}

function sample(): LayerEntry[] {
  return [
    file("usr/bin/tool", "#!/bin/sh\necho hi\n", { mode: 0o4755 }),
    dir("usr"),
    dir("usr/bin"),
    dir("tmp", { mode: 0o1777 }),
    symlink("usr/bin/alias", "tool"),
    file("a-b", "dash"),
    dir("a"),
    file("a/z", "z"),
    { path: "run/pipe", type: "fifo", mode: 0o600, uid: 0, gid: 0, mtimeMs: T0 },
    dir("run"),
    { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, mtimeMs: T0, devmajor: 1, devminor: 3 },
    dir("dev"),
  ];
}

describe("writeLayerTar ordering and determinism", () => {
  it("sorts component-wise by bytes, parents first, subtree contiguous", async () => {
    const names = gnuList(await collect(writeLayerTar(sample())), false);
    expect(names).toEqual([
      "a/",
      "a/z",
      "a-b",
      "dev/",
      "dev/null",
      "run/",
      "run/pipe",
      "tmp/",
      "usr/",
      "usr/bin/",
      "usr/bin/alias",
      "usr/bin/tool",
    ]);
  });

  it("produces identical bytes for any input order, sync or async, across runs", async () => {
    const a = await collect(writeLayerTar(sample()));
    const reversed = sample().reverse();
    async function* gen(): AsyncGenerator<LayerEntry> {
      for (const e of reversed) yield e;
    }
    const b = await collect(writeLayerTar(gen()));
    const c = await collect(writeLayerTar(sample()));
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
    expect(sha256(b)).toBe(sha256(a));
  });

  it("orders by UTF-8 bytes, not UTF-16 code units", async () => {
    // U+FF5E (UTF-8 ef bd 9e) < U+1F600 (f0 9f 98 80), but in UTF-16 the surrogate d83d < ff5e.
    const names = gnuList(await collect(writeLayerTar([file("\u{1F600}", "x"), file("\uFF5E", "y")])), false);
    expect(names).toEqual(["\uFF5E", "\u{1F600}"]);
  });

  it("puts an opaque marker first among its directory's children", async () => {
    const names = gnuList(await collect(writeLayerTar([file("d/!bang", "x"), dir("d"), opaqueEntry("d"), whiteoutEntry("d/-gone")])), false);
    expect(names).toEqual(["d/", "d/.wh..wh..opq", "d/!bang", "d/.wh.-gone"]);
  });
});

describe("writeLayerTar with input already in layer order (the fast path that skips the sort)", () => {
  // Names chosen where layer order differs from plain string order: "/" ranks below every byte, so
  // "a/b" < "a-b" < "a.b" < "a0"; plus BMP letters above "~", prefixes, and deep paths.
  const NAMES = ["a", "a/b", "a/b/c", "a-b", "a.b", "a0", "ab", "b", "b/", "B", "~", "\u00e9", "\u00e9/x", "\uFF5E", "z/y/x/w", "z/y-x", "z-", ".hidden", "_", "0"];
  function randomEntries(seed: number): LayerEntry[] {
    let x = seed;
    const rnd = (n: number): number => ((x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) % n);
    const paths = new Set<string>();
    while (paths.size < 60) {
      const depth = 1 + rnd(3);
      const parts: string[] = [];
      for (let i = 0; i < depth; i++) parts.push((NAMES[rnd(NAMES.length)] as string).replace(/\/$/, "") || "x");
      paths.add(parts.join("/"));
    }
    // Every parent is a directory; leaves are files.
    const all = new Set<string>();
    for (const p of paths) {
      const parts = p.split("/");
      for (let i = 1; i <= parts.length; i++) all.add(parts.slice(0, i).join("/"));
    }
    return [...all].map((p) => ([...all].some((q) => q.startsWith(`${p}/`)) ? dir(p) : file(p, `content of ${p}`)));
  }

  it("gives the same bytes as the sorting path for random trees", async () => {
    for (let seed = 1; seed <= 25; seed++) {
      const entries = randomEntries(seed);
      const shuffled = await collect(writeLayerTar([...entries].reverse()));
      const names = gnuList(shuffled, false).map((n) => n.replace(/\/$/, ""));
      const byName = new Map(entries.map((e) => [e.path, e]));
      // Feed the same entries in the order the sorting path chose: the fast path must keep it exactly.
      const ordered = await collect(writeLayerTar(names.map((n) => byName.get(n) as LayerEntry)));
      expect(ordered.equals(shuffled)).toBe(true);
    }
  });

  it("still rejects a duplicate path given in order", async () => {
    await expect(collect(writeLayerTar([dir("a"), file("a/x", "1"), file("a/x", "2")]))).rejects.toThrow(LayerEntryError);
  });

  it("still sorts input that is only almost in order", async () => {
    const names = gnuList(await collect(writeLayerTar([dir("a"), file("a-b", "x"), file("a/b", "y")])), false);
    expect(names).toEqual(["a/", "a/b", "a-b"]);
  });
});

describe("writeLayerTar headers as GNU tar sees them", () => {
  it("keeps modes incl. setuid/sticky, types, owners, devices and clamps mtimes to SOURCE_DATE_EPOCH", async () => {
    const entries = sample().map((e) => (e.path === "a/z" ? { ...e, uid: 1000, gid: 1001, uname: "me", gname: "us" } : e));
    const epoch = Math.floor(T0 / 1000) - 3600;
    const later = { ...file("late", "x"), mtimeMs: T0 - 7200_000 };
    const lines = gnuList(await collect(writeLayerTar([...entries, later], { sourceDateEpoch: epoch })), true);
    const find = (name: string): string => {
      const line = lines.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `));
      if (!line) throw new Error(`no ${name} in ${lines.join("\n")}`);
      return line;
    };
    expect(find("usr/bin/tool")).toMatch(/^-rwsr-xr-x 0\/0 +18 2024-01-02 02:04 usr\/bin\/tool$/);
    expect(find("tmp/")).toMatch(/^drwxrwxrwt 0\/0 +0 2024-01-02 02:04 tmp\/$/);
    expect(find("usr/bin/alias")).toMatch(/^lrwxrwxrwx 0\/0 +0 .* usr\/bin\/alias -> tool$/);
    expect(find("run/pipe")).toMatch(/^prw------- 0\/0 /);
    expect(find("dev/null")).toMatch(/^crw-rw-rw- 0\/0 +1,3 /);
    expect(find("a/z")).toMatch(/^-rw-r--r-- 1000\/1001 +1 /);
    // older than the epoch: unchanged
    expect(find("late")).toMatch(/ 2024-01-02 01:04 late$/);
  });

  it("writes ustar headers with fixed fields and no PAX header when not needed", async () => {
    const tar = await collect(writeLayerTar([dir("d", { uname: "root", gname: "root" })]));
    expect(tar.length).toBe(512 + 1024);
    expect(tar.toString("latin1", 0, 3)).toBe("d/\0");
    expect(tar.toString("latin1", 100, 108)).toBe("0000755\0");
    expect(tar.toString("latin1", 156, 157)).toBe("5");
    expect(tar.toString("latin1", 257, 265)).toBe("ustar\x0000");
    expect(tar.toString("latin1", 265, 270)).toBe("root\0");
    expect(tar.subarray(329, 345).every((b) => b === 0)).toBe(true); // no device numbers
    expect(tar.subarray(512).every((b) => b === 0)).toBe(true);
  });

  it("uses PAX records for names > 100 and > 255 bytes and long link names", async () => {
    const long1 = `${"d".repeat(60)}/${"f".repeat(60)}`; // 121 bytes
    const long2 = `${"x".repeat(200)}/${"y".repeat(100)}`; // 301 bytes
    const target = `../${"t".repeat(150)}`;
    const tar = await collect(
      writeLayerTar([file(long1, "1"), file(long2, "2"), symlink("s", target), { ...file(long2, "").valueOf(), path: "h", type: "hardlink", linkname: long2, size: 0 }]),
    );
    const names = gnuList(tar, false);
    expect(names).toEqual([long1, "h", "s", long2]);
    const verbose = gnuList(tar, true);
    expect(verbose.find((l) => l.includes(" s -> "))).toContain(`s -> ${target}`);
    // The hardlink group is canonicalised: "h" sorts first, so it carries the content.
    expect(verbose.find((l) => l.endsWith(long2) || l.includes(`${long2} link to`))).toContain(`${long2} link to h`);
    expect(tar.includes(Buffer.from(`${"d".repeat(60)}/PaxHeaders.0/`))).toBe(true);
  });

  it("writes xattrs as SCHILY.xattr PAX records, binary-safe", async () => {
    // A valid VFS v2 capability (the kernel checks it) whose bytes include "\n" and "=".
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const tar = await collect(writeLayerTar([file("bin/ping", "p", { xattrs: { "security.capability": cap, "user.note": Buffer.from("hi") } })]));
    const record = Buffer.concat([Buffer.from(" SCHILY.xattr.security.capability="), cap, Buffer.from("\n")]);
    expect(tar.includes(record)).toBe(true);
    // GNU tar restores them on extraction.
    const out = join(work, "xattr-out");
    mkdirSync(out);
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "-xf", "-", "-C", out], { input: tar });
    const attrs = execFileSync("getfattr", ["--absolute-names", "-d", "-m", "-", "-e", "hex", join(out, "bin/ping")], { encoding: "utf8" });
    expect(attrs).toContain(`security.capability=0x${cap.toString("hex")}`);
    expect(attrs).toContain("user.note=0x6869");
  });

  it("canonicalises hardlinks regardless of which name the caller marked as the link", async () => {
    const a = await collect(writeLayerTar([file("b", "same"), { path: "a", type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtimeMs: T0, linkname: "b" }]));
    const b = await collect(writeLayerTar([file("a", "same"), { path: "b", type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtimeMs: T0, linkname: "a" }]));
    expect(a.equals(b)).toBe(true);
    expect(gnuList(a, true)[1]).toMatch(/ b link to a$/);
  });
});

describe("writeLayerTar validation", () => {
  const fails = async (entries: LayerEntry[]): Promise<unknown> => collect(writeLayerTar(entries)).then(() => null, (e: unknown) => e);

  it("fails when a file yields more or fewer bytes than its size", async () => {
    const short = await fails([{ ...file("f", "abc"), size: 4 }]);
    expect(short).toBeInstanceOf(LayerEntryError);
    expect(String(short)).toContain('"f"');
    const long = await fails([{ ...file("g", "abcdef"), size: 2 }]);
    expect(long).toBeInstanceOf(LayerEntryError);
  });

  it("rejects duplicates, '..', and dangling hardlinks", async () => {
    expect(await fails([file("a", "1"), file("./a", "2")])).toBeInstanceOf(LayerEntryError);
    expect(await fails([file("a/../b", "1")])).toBeInstanceOf(LayerEntryError);
    expect(await fails([{ path: "h", type: "hardlink", mode: 0, uid: 0, gid: 0, mtimeMs: 0, linkname: "missing" }])).toBeInstanceOf(LayerEntryError);
  });

  it("stops on abort", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await expect(collect(writeLayerTar([file("a", "1")], { signal: ac.signal }))).rejects.toThrow("stop");
  });

  it("streams a content source that is slower than the consumer", async () => {
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000, i));
    const slow: LayerEntry = { ...file("big", ""), size: 50_000, open: () => Readable.from(chunks) };
    const tar = await collect(writeLayerTar([slow]));
    expect(tar.length).toBe(512 + 50_000 + (512 - (50_000 % 512)) + 1024);
    expect(tar.subarray(512, 512 + 1000).every((b) => b === 0)).toBe(true);
    expect(tar[512 + 49_999]).toBe(49);
  });
});

describe("writeLayerBlob", () => {
  it("gzip: diffID is the sha256 of the gunzipped blob, digest of the blob; header has no mtime/name", async () => {
    const sink = memorySink();
    const info = await writeLayerBlob(sample(), sink, { level: 6 });
    const blob = sink.data();
    const tar = gunzipSync(blob);
    expect(info.mediaType).toBe(MEDIA_TYPE_LAYER_TAR_GZIP);
    expect(info.digest).toBe(sha256(blob));
    expect(info.diffID).toBe(sha256(tar));
    expect(info.size).toBe(blob.length);
    expect(info.uncompressedSize).toBe(tar.length);
    expect(tar.equals(await collect(writeLayerTar(sample())))).toBe(true);
    expect([...blob.subarray(0, 4)]).toEqual([0x1f, 0x8b, 0x08, 0x00]); // FLG 0: no FNAME/FCOMMENT
    expect(blob.readUInt32LE(4)).toBe(0); // MTIME 0
  });

  it("is reproducible across runs and input orders, and 'none' writes the plain tar", async () => {
    const s1 = memorySink();
    const s2 = memorySink();
    const i1 = await writeLayerBlob(sample(), s1, { level: 1 });
    const i2 = await writeLayerBlob(sample().reverse(), s2, { level: 1 });
    expect(i2).toEqual(i1);
    expect(s2.data().equals(s1.data())).toBe(true);
    const s3 = memorySink();
    const i3 = await writeLayerBlob(sample(), s3, { compression: "none" });
    expect(i3.diffID).toBe(i1.diffID);
    expect(i3.digest).toBe(i3.diffID);
    expect(i3.mediaType).toBe(MEDIA_TYPE_LAYER_TAR);
    expect(sha256(s3.data())).toBe(i3.diffID);
  });

  it("rejects when a file's byte count is wrong", async () => {
    await expect(writeLayerBlob([{ ...file("x", "123"), size: 5 }], memorySink())).rejects.toBeInstanceOf(LayerEntryError);
  });
});
