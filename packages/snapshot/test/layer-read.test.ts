import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BadTarError,
  NotAnArchiveError,
  detectArchive,
  readLayerTar,
  writeLayerTar,
  type ArchiveCompression,
  type LayerEntry,
} from "../src/index.js";
import { T0, collect, dir, file, symlink } from "./layer-helpers.js";

const work = mkdtempSync(join(tmpdir(), "kiln-layer-read-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface ReadBack {
  entry: LayerEntry;
  content: Buffer;
}

async function readAll(input: NodeJS.ReadableStream, onCompression?: (c: ArchiveCompression) => void): Promise<ReadBack[]> {
  const out: ReadBack[] = [];
  for await (const { entry, body } of readLayerTar(input, onCompression ? { onCompression } : {})) {
    out.push({ entry, content: await collect(body) });
  }
  return out;
}

const LONG_A = `${"a".repeat(90)}/${"b".repeat(90)}`; // > 100
const LONG_B = `${"c".repeat(150)}/${"d".repeat(150)}`; // > 255
const LONG_TARGET = `../${"t".repeat(200)}`;

describe("round trip writeLayerTar -> readLayerTar", () => {
  it("preserves every field, including long names, binary xattrs, big ids and hardlinks", async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x00, 0x0a, 0x3d, 0x20]);
    const input: LayerEntry[] = [
      dir("a".repeat(90), { mode: 0o2755, uid: 5, gid: 6, uname: "u".repeat(40), gname: "g" }),
      file(LONG_A, "long a", { mode: 0o4711, xattrs: { "security.capability": cap, "user.x": Buffer.from("y") } }),
      file("big-ids", "ids", { uid: 3_000_000, gid: 4_000_000 }),
      symlink("link", LONG_TARGET),
      { path: "hard", type: "hardlink", mode: 0o4711, uid: 0, gid: 0, mtimeMs: T0, linkname: LONG_A },
      { path: "dev/tty", type: "char", mode: 0o620, uid: 0, gid: 5, mtimeMs: T0, devmajor: 5, devminor: 0 },
      { path: "dev/sda", type: "block", mode: 0o660, uid: 0, gid: 6, mtimeMs: T0, devmajor: 8, devminor: 1 },
      { path: "fifo", type: "fifo", mode: 0o644, uid: 0, gid: 0, mtimeMs: T0 },
      file(LONG_B, Buffer.alloc(1500, 7)),
      file("empty", ""),
    ];
    const back = await readAll(writeLayerTar(input));
    const byPath = new Map(back.map((r) => [r.entry.path, r]));
    expect([...byPath.keys()]).toEqual(["a".repeat(90), LONG_A, "big-ids", LONG_B, "dev/sda", "dev/tty", "empty", "fifo", "hard", "link"]);

    expect(byPath.get(LONG_A)!.entry).toMatchObject({ type: "file", mode: 0o4711, size: 6 });
    expect(byPath.get(LONG_A)!.content.toString()).toBe("long a");
    expect(byPath.get(LONG_A)!.entry.xattrs!["security.capability"]!.equals(cap)).toBe(true);
    expect(byPath.get(LONG_A)!.entry.xattrs!["user.x"]!.toString()).toBe("y");
    expect(byPath.get("hard")!.entry).toMatchObject({ type: "hardlink", linkname: LONG_A });

    const dirEntry = byPath.get("a".repeat(90))!.entry;
    expect(dirEntry).toEqual({ path: "a".repeat(90), type: "dir", mode: 0o2755, uid: 5, gid: 6, uname: "u".repeat(40), gname: "g", mtimeMs: T0 });
    expect(byPath.get("big-ids")!.entry).toMatchObject({ uid: 3_000_000, gid: 4_000_000, size: 3 });
    expect(byPath.get("link")!.entry).toMatchObject({ type: "symlink", linkname: LONG_TARGET });
    expect(byPath.get("dev/tty")!.entry).toMatchObject({ type: "char", devmajor: 5, devminor: 0, gid: 5 });
    expect(byPath.get("dev/sda")!.entry).toMatchObject({ type: "block", devmajor: 8, devminor: 1 });
    expect(byPath.get("fifo")!.entry.type).toBe("fifo");
    expect(byPath.get(LONG_B)!.content.equals(Buffer.alloc(1500, 7))).toBe(true);
    expect(byPath.get("empty")!.entry.size).toBe(0);
  });

  it("uses a PAX size record for files over 8 GiB", async () => {
    const size = 2 ** 33 + 5;
    const zeros = Buffer.alloc(1 << 16);
    let produced = 0;
    const huge: LayerEntry = {
      ...file("huge", ""),
      size,
      open: () =>
        new Readable({
          read() {
            produced += zeros.length;
            this.push(zeros);
          },
        }),
    };
    const tar = writeLayerTar([huge]);
    const head: Buffer[] = [];
    let got = 0;
    for await (const chunk of tar as AsyncIterable<Buffer>) {
      head.push(chunk);
      got += chunk.length;
      if (got >= 4096) break; // stops the writer (and the source) early
    }
    const bytes = Buffer.concat(head);
    expect(bytes.includes(Buffer.from(`size=${size}\n`))).toBe(true);
    expect(bytes.toString("latin1", 512 * 2 + 124, 512 * 2 + 136)).toBe("00000000000\0"); // ustar field left 0
    expect(produced).toBeLessThan(1 << 22); // the content was streamed, not buffered
    for await (const { entry } of readLayerTar(Readable.from([bytes]))) {
      expect(entry.size).toBe(size);
      break;
    }
  });

  it("skips bodies the consumer does not read", async () => {
    const tar = writeLayerTar([file("a", Buffer.alloc(70_000, 1)), file("b", "second"), file("c", Buffer.alloc(513, 2))]);
    const seen: string[] = [];
    let bContent = "";
    for await (const { entry, body } of readLayerTar(tar)) {
      seen.push(entry.path);
      if (entry.path === "b") bContent = (await collect(body)).toString();
    }
    expect(seen).toEqual(["a", "b", "c"]);
    expect(bContent).toBe("second");
  });
});

describe("reading archives written by GNU tar", () => {
  const tree = join(work, "tree");
  beforeAll(() => {
    mkdirSync(join(tree, "a".repeat(150), "b".repeat(120)), { recursive: true });
    writeFileSync(join(tree, "a".repeat(150), "b".repeat(120), "c".repeat(50)), "deep");
    writeFileSync(join(tree, "plain"), "plain content\n");
    linkSync(join(tree, "plain"), join(tree, "plain-link"));
    symlinkSync("x".repeat(180), join(tree, "sym"));
    execFileSync("mkfifo", [join(tree, "fifo")]);
    for (const p of ["plain", "fifo"]) utimesSync(join(tree, p), 1_700_000_000, 1_700_000_000);
  });

  for (const format of ["gnu", "posix", "oldgnu"] as const) {
    it(`decodes --format=${format}`, async () => {
      const tar = join(work, `t-${format}.tar`);
      execFileSync("tar", [`--format=${format}`, "--owner=big:3000000", "--group=grp:4000000", "-C", tree, "--sort=name", "-cf", tar, "."]);
      const { createReadStream } = await import("node:fs");
      const back = await readAll(createReadStream(tar));
      const byPath = new Map(back.map((r) => [r.entry.path, r]));
      const deep = `${"a".repeat(150)}/${"b".repeat(120)}/${"c".repeat(50)}`;
      expect(byPath.get(".")!.entry.type).toBe("dir");
      expect(byPath.get(deep)!.content.toString()).toBe("deep");
      expect(byPath.get(`${"a".repeat(150)}/${"b".repeat(120)}`)!.entry.type).toBe("dir");
      // uid/gid beyond the octal field: base-256 (gnu, oldgnu) or PAX records (posix)
      expect(byPath.get("plain")!.entry).toMatchObject({ type: "file", size: 14, mtimeMs: 1_700_000_000_000, uid: 3_000_000, gid: 4_000_000, uname: "big", gname: "grp" });
      expect(byPath.get("plain-link")!.entry).toMatchObject({ type: "hardlink", linkname: "plain" });
      expect(byPath.get("sym")!.entry).toMatchObject({ type: "symlink", linkname: "x".repeat(180) });
      expect(byPath.get("fifo")!.entry.type).toBe("fifo");
    });
  }
});

describe("compression detection", () => {
  let tarPath = "";
  beforeAll(async () => {
    tarPath = join(work, "c.tar");
    writeFileSync(tarPath, await collect(writeLayerTar([dir("d"), file("d/f", Buffer.alloc(100_000, 3)), file("g", "g")])));
    execFileSync("sh", ["-c", `gzip -kc ${tarPath} > ${tarPath}.gz && bzip2 -kc ${tarPath} > ${tarPath}.bz2 && xz -kc ${tarPath} > ${tarPath}.xz && zstd -qc ${tarPath} > ${tarPath}.zst`]);
    writeFileSync(join(work, "notes.txt"), "just some text, definitely not a tar archive\n".repeat(40));
    execFileSync("sh", ["-c", `cd ${work} && gzip -kc notes.txt > notes.txt.gz && xz -kc notes.txt > notes.txt.xz && bzip2 -kc notes.txt > notes.txt.bz2`]);
    writeFileSync(join(work, "empty.tar"), Buffer.alloc(1024));
    writeFileSync(join(work, "zero-bytes"), "");
  });

  const cases: [string, ArchiveCompression][] = [
    ["", "none"],
    [".gz", "gzip"],
    [".bz2", "bzip2"],
    [".xz", "xz"],
    [".zst", "zstd"],
  ];
  for (const [ext, compression] of cases) {
    it(`reads ${compression} and detectArchive reports it`, async () => {
      const { createReadStream } = await import("node:fs");
      let seen: ArchiveCompression | undefined;
      const back = await readAll(createReadStream(tarPath + ext), (c) => (seen = c));
      expect(seen).toBe(compression);
      expect(back.map((r) => r.entry.path)).toEqual(["d", "d/f", "g"]);
      expect(back[1]!.content.equals(Buffer.alloc(100_000, 3))).toBe(true);
      expect(await detectArchive(tarPath + ext)).toBe(compression);
    });
  }

  it("reports non-archives (plain or compressed) as not an archive", async () => {
    const { createReadStream } = await import("node:fs");
    for (const name of ["notes.txt", "notes.txt.gz", "notes.txt.xz", "notes.txt.bz2", "zero-bytes"]) {
      await expect(readAll(createReadStream(join(work, name)))).rejects.toBeInstanceOf(NotAnArchiveError);
      expect(await detectArchive(join(work, name))).toBeNull();
    }
  });

  it("an empty archive reads as no entries but is not an archive for ADD", async () => {
    const { createReadStream } = await import("node:fs");
    expect(await readAll(createReadStream(join(work, "empty.tar")))).toEqual([]);
    expect(await detectArchive(join(work, "empty.tar"))).toBeNull();
  });

  it("a truncated archive is a BadTarError naming the entry", async () => {
    const full = await collect(writeLayerTar([file("first", "1"), file("victim", Buffer.alloc(5000, 1))]));
    const cut = full.subarray(0, 512 * 3 + 1000);
    const err = await readAll(Readable.from([cut])).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(BadTarError);
    expect(String(err)).toContain("victim");
  });

  it("a corrupted later header is a BadTarError", async () => {
    const full = Buffer.from(await collect(writeLayerTar([file("first", "1"), file("second", "2")])));
    full[1024 + 10] ^= 0xff; // inside the second header's name
    await expect(readAll(Readable.from([full]))).rejects.toBeInstanceOf(BadTarError);
  });
});
