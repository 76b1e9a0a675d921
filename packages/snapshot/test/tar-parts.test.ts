import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  LayerEntryError,
  parseTarPartsIndex,
  serializeTarPartsIndex,
  writeLayerTar,
  speculateDiffID,
  writeTarParts,
  type ChangedLayerFile,
  type Digest,
  type TarPartEntry,
  type TarPartSink,
  type TarPartsIndex,
} from "../src/index.js";

const sha = (b: Buffer): Digest => `sha256:${createHash("sha256").update(b).digest("hex")}`;

class MemorySink implements TarPartSink {
  readonly blobs = new Map<string, Buffer>();
  reads = 0;
  has(d: Digest): boolean {
    return this.blobs.has(d);
  }
  async write(data: Buffer, digest: Digest): Promise<void> {
    expect(sha(data)).toBe(digest);
    this.blobs.set(digest, Buffer.from(data));
  }
  read(d: Digest): Buffer {
    this.reads++;
    return this.blobs.get(d)!;
  }
  concat(parts: { digest: Digest }[]): Buffer {
    return Buffer.concat(parts.map((p) => this.blobs.get(p.digest)!));
  }
}

async function plainTar(entries: TarPartEntry[], sourceDateEpoch?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of writeLayerTar(entries, sourceDateEpoch !== undefined ? { sourceDateEpoch } : {})) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A deterministic pseudo-random tree: small and big files, dirs, symlinks, a hardlink, long (PAX) names. */
interface FileSpec {
  rel: string;
  data: Buffer;
}
let dir: string;
let files: FileSpec[];

function entriesFor(specs: FileSpec[], opts: { fingerprints?: boolean; streams?: boolean } = {}): TarPartEntry[] {
  const out: TarPartEntry[] = [
    { path: "app", type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 1_700_000_000_000 },
    { path: "app/link", type: "symlink", linkname: "a/0.txt", mode: 0o777, uid: 0, gid: 0, mtimeMs: 1_700_000_000_000 },
  ];
  const dirs = new Set<string>();
  for (const f of specs) {
    const d = path.posix.dirname(f.rel);
    if (!dirs.has(d)) {
      dirs.add(d);
      out.push({ path: `app/${d}`, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 1_700_000_000_000 });
    }
    const abs = path.join(dir, f.rel);
    const e: TarPartEntry = { path: `app/${f.rel}`, type: "file", mode: 0o644, uid: 1000, gid: 1000, mtimeMs: 1_700_000_123_000, size: f.data.length };
    if (opts.streams) e.open = () => Readable.from([f.data.subarray(0, 7), f.data.subarray(7)]);
    else {
      e.sourcePath = abs;
      e.open = () => Readable.from([f.data]);
    }
    if (opts.fingerprints !== false) e.fingerprint = sha(f.data);
    out.push(e);
  }
  out.push({ path: "app/hard", type: "hardlink", linkname: `app/${specs[1]!.rel}`, mode: 0o644, uid: 0, gid: 0, mtimeMs: 0 });
  return out;
}

async function writeTree(specs: FileSpec[]): Promise<void> {
  for (const f of specs) {
    await import("node:fs/promises").then((fs) => fs.mkdir(path.dirname(path.join(dir, f.rel)), { recursive: true }));
    await writeFile(path.join(dir, f.rel), f.data);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-tar-parts-"));
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  files = [];
  for (let i = 0; i < 400; i++) {
    const kind = rnd(20);
    const size = kind === 0 ? 0 : kind === 1 ? 200_000 + rnd(300_000) : rnd(6000);
    const name = i % 37 === 0 ? `d${i % 9}/${"long-name-".repeat(12)}${i}.bin` : `d${i % 9}/${i}.txt`;
    files.push({ rel: name, data: kind === 1 ? randomBytes(size) : Buffer.from(`file ${i} `.repeat(size / 7 + 1).slice(0, size)) });
  }
  files.push({ rel: "a/0.txt", data: Buffer.from("zero\n") });
  await writeTree(files);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeTarParts", () => {
  it("concatenates to exactly the plain layer tar, for sourcePath and stream sources", async () => {
    for (const streams of [false, true]) {
      const entries = entriesFor(files, { streams });
      const sink = new MemorySink();
      const r = await writeTarParts(entries, sink, { partBytes: 64 << 10, sourceDateEpoch: 1_700_000_100 });
      const plain = await plainTar(entriesFor(files, { streams }), 1_700_000_100);
      const joined = sink.concat(r.parts);
      expect(joined.equals(plain)).toBe(true);
      expect(r.diffID).toBe(sha(plain));
      expect(r.size).toBe(plain.length);
      expect(r.parts.length).toBeGreaterThan(10);
      expect(r.stats.writtenParts + r.stats.knownParts).toBe(r.parts.length);
      // Big files get their own parts, cut at every partBytes of content.
      expect(Math.max(...r.parts.map((p) => p.size))).toBeLessThanOrEqual(4 * (64 << 10) + 2048);
    }
  });

  it("after a one-file change reuses every other part without reading its sources", async () => {
    const sink = new MemorySink();
    const first = await writeTarParts(entriesFor(files), sink, { partBytes: 64 << 10 });
    const index: TarPartsIndex = { version: 1, partBytes: 64 << 10, diffID: first.diffID, size: first.size, parts: first.parts };
    const reparsed = parseTarPartsIndex(serializeTarPartsIndex(index));
    expect(reparsed).toEqual(index);

    const target = files[200]!.rel;
    const changed = files.map((f) => (f.rel === target ? { ...f, data: Buffer.from("edited content\n") } : f));
    await writeTree(changed.filter((f) => f.rel === target));
    const second = await writeTarParts(entriesFor(changed), sink, { partBytes: 64 << 10, previous: reparsed! });
    const plain = await plainTar(entriesFor(changed));
    expect(sink.concat(second.parts).equals(plain)).toBe(true);
    expect(second.diffID).toBe(sha(plain));
    expect(second.diffID).not.toBe(first.diffID);
    expect(second.stats.writtenParts).toBeGreaterThanOrEqual(1);
    expect(second.stats.writtenParts).toBeLessThanOrEqual(2);
    expect(second.stats.reusedParts).toBeGreaterThanOrEqual(second.parts.length - 2);
    expect(second.stats.sourceBytesRead).toBeLessThan(first.stats.sourceBytesRead / 10);
    await writeTree(files.filter((f) => f.rel === target));
  });

  it("without fingerprints reads every source but stores only new parts", async () => {
    const sink = new MemorySink();
    const first = await writeTarParts(entriesFor(files, { fingerprints: false }), sink, { partBytes: 64 << 10 });
    expect(first.parts.every((p) => p.recipe === undefined)).toBe(true);
    const again = await writeTarParts(entriesFor(files, { fingerprints: false }), sink, { partBytes: 64 << 10, previous: { version: 1, partBytes: 64 << 10, diffID: first.diffID, size: first.size, parts: first.parts } });
    expect(again.diffID).toBe(first.diffID);
    expect(again.stats.reusedParts).toBe(0);
    expect(again.stats.writtenParts).toBe(0);
    expect(again.stats.knownParts).toBe(again.parts.length);
  });

  it("a different metadata (mode) changes the recipe even with the same content", async () => {
    const sink = new MemorySink();
    const first = await writeTarParts(entriesFor(files), sink, { partBytes: 64 << 10 });
    const entries = entriesFor(files).map((e) => (e.path === "app/d4/4.txt" ? { ...e, mode: 0o600 } : e));
    const second = await writeTarParts(entries, sink, { partBytes: 64 << 10, previous: { version: 1, partBytes: 64 << 10, diffID: first.diffID, size: first.size, parts: first.parts } });
    const plain = await plainTar(entriesFor(files).map((e) => (e.path === "app/d4/4.txt" ? { ...e, mode: 0o600 } : e)));
    expect(second.diffID).toBe(sha(plain));
    expect(second.diffID).not.toBe(first.diffID);
    expect(second.stats.reusedParts).toBe(second.parts.length - 1);
  });

  it("refuses a source whose length differs from the declared size", async () => {
    const sink = new MemorySink();
    const base = entriesFor(files.slice(0, 5));
    const grown = base.map((e) => (e.type === "file" && e.size! > 0 ? { ...e, size: e.size! - 1 } : e));
    await expect(writeTarParts(grown, sink)).rejects.toBeInstanceOf(LayerEntryError);
    const shrunk = base.map((e) => (e.type === "file" && e.size! > 0 ? { ...e, size: e.size! + 1 } : e));
    await expect(writeTarParts(shrunk, sink)).rejects.toBeInstanceOf(LayerEntryError);
    const streamGrown = entriesFor(files.slice(0, 5), { streams: true }).map((e) => (e.type === "file" && e.size! > 0 ? { ...e, size: e.size! - 1 } : e));
    await expect(writeTarParts(streamGrown, sink)).rejects.toBeInstanceOf(LayerEntryError);
  });

  it("rejects malformed indexes instead of trusting them", () => {
    expect(parseTarPartsIndex("{")).toBeUndefined();
    expect(parseTarPartsIndex(JSON.stringify({ version: 1, partBytes: 1, diffID: `sha256:${"a".repeat(64)}`, size: 5, parts: [{ digest: `sha256:${"b".repeat(64)}`, size: 4 }] }))).toBeUndefined();
  });
});

/** Parts as files, so the diffID can be hashed by the worker (sink.readPath). */
class DirSink implements TarPartSink {
  constructor(readonly dir: string) {}
  file(d: Digest): string {
    return path.join(this.dir, d.slice("sha256:".length));
  }
  has(d: Digest): boolean {
    return existsSync(this.file(d));
  }
  async write(data: Buffer, digest: Digest): Promise<void> {
    expect(sha(data)).toBe(digest);
    await writeFile(this.file(digest), data);
  }
  read(d: Digest): Buffer {
    return readFileSync(this.file(d));
  }
  readPath(d: Digest): string {
    return this.file(d);
  }
}

describe("writeTarParts with the diffID hashed on a worker thread", () => {
  it("gives the same parts and diffID as inline hashing, cold and after a change", async () => {
    const store = await mkdtemp(path.join(os.tmpdir(), "kiln-parts-dir-"));
    try {
      const sink = new DirSink(store);
      const plain = await plainTar(entriesFor(files));
      const viaWorker = await writeTarParts(entriesFor(files), sink, { partBytes: 64 << 10, hashing: "worker" });
      expect(viaWorker.diffID).toBe(sha(plain));
      const inline = await writeTarParts(entriesFor(files), new MemorySink(), { partBytes: 64 << 10, hashing: "inline" });
      expect(inline.parts).toEqual(viaWorker.parts);
      const previous: TarPartsIndex = { version: 1, partBytes: 64 << 10, diffID: viaWorker.diffID, size: viaWorker.size, parts: viaWorker.parts };
      const target = files[123]!.rel;
      const changed = files.map((f) => (f.rel === target ? { ...f, data: Buffer.from("changed\n") } : f));
      await writeTree(changed.filter((f) => f.rel === target));
      const again = await writeTarParts(entriesFor(changed), sink, { partBytes: 64 << 10, previous, hashing: "worker" });
      expect(again.diffID).toBe(sha(await plainTar(entriesFor(changed))));
      expect(again.stats.reusedParts).toBeGreaterThan(again.parts.length - 3);
      await writeTree(files.filter((f) => f.rel === target));
    } finally {
      await rm(store, { recursive: true, force: true });
    }
  });

  it("fails (never a wrong digest) when a stored part is shorter than recorded", async () => {
    const store = await mkdtemp(path.join(os.tmpdir(), "kiln-parts-dir-"));
    try {
      const sink = new DirSink(store);
      const first = await writeTarParts(entriesFor(files), sink, { partBytes: 64 << 10, hashing: "worker" });
      const victim = first.parts[3]!;
      await writeFile(sink.file(victim.digest), Buffer.alloc(10));
      const previous: TarPartsIndex = { version: 1, partBytes: 64 << 10, diffID: first.diffID, size: first.size, parts: first.parts };
      await expect(writeTarParts(entriesFor(files), sink, { partBytes: 64 << 10, previous, hashing: "worker" })).rejects.toThrow(/read 10 of/);
    } finally {
      await rm(store, { recursive: true, force: true });
    }
  });
});

describe("writeTarParts with a speculated part list (hashing started before planning)", () => {
  const PB = 64 << 10;
  let store: string;
  let sink: DirSink;
  let previous: TarPartsIndex;
  beforeAll(async () => {
    store = await mkdtemp(path.join(os.tmpdir(), "kiln-parts-spec-"));
    sink = new DirSink(store);
    const first = await writeTarParts(entriesFor(files), sink, { partBytes: PB, hashing: "worker" });
    previous = { version: 1, partBytes: PB, diffID: first.diffID, size: first.size, parts: first.parts };
    // Every part that starts with a header names its entry (the speculation's map of the layer).
    expect(first.parts.filter((p) => p.first !== undefined).length).toBeGreaterThan(first.parts.length / 2);
    expect(first.parts[0]!.first).toBe("app");
  });
  afterEach(async () => {
    await writeTree(files);
  });
  afterAll(async () => {
    await rm(store, { recursive: true, force: true });
  });

  /** Edits files (content, so size; and mtime) and returns the changed entry list and the new entries. */
  async function edit(indices: number[], mtimeMs = 1_700_000_999_000) {
    const targets = new Set(indices.map((i) => files[i]!.rel));
    const changed = files.map((f) => (targets.has(f.rel) ? { ...f, data: Buffer.from(`edited ${f.rel}\n`.repeat(3)) } : f));
    await writeTree(changed.filter((f) => targets.has(f.rel)));
    const entries = entriesFor(changed).map((e) => (targets.has(e.path.slice(4)) ? { ...e, mtimeMs } : e));
    const list: ChangedLayerFile[] = entries
      .filter((e) => targets.has(e.path.slice(4)))
      .map((e) => ({ type: "file", path: e.path, size: e.size!, mtimeMs: e.mtimeMs, sourcePath: e.sourcePath! }));
    return { entries, list };
  }

  it("uses the guess when it is right: same parts, same diffID as without it", async () => {
    // (Files whose edit moves no part boundary: a part cut at its size limit can move, and the guess is then
    // dropped, as the next test shows for other reasons.)
    for (const picks of [[0], [200], [0, 200], [files.length - 1]]) {
      const { entries, list } = await edit(picks);
      const speculation = speculateDiffID(previous, list, (d) => sink.readPath(d));
      expect(speculation).toBeDefined();
      const withGuess = await writeTarParts(entries, sink, { partBytes: PB, previous, speculation: speculation!, hashing: "worker" });
      const plain = await plainTar(entries);
      expect(withGuess.stats.speculationUsed).toBe(true);
      expect(withGuess.diffID).toBe(sha(plain));
      expect(Buffer.concat(withGuess.parts.map((q) => readFileSync(sink.readPath(q.digest)))).equals(plain)).toBe(true);
      await writeTree(files);
    }
  });

  it("a guess that misses what changed (here a mode) is dropped and the real parts are hashed", async () => {
    const { entries, list } = await edit([42]);
    const chmodded = entries.map((e) => (e.path === list[0]!.path ? { ...e, mode: 0o600 } : e));
    const speculation = speculateDiffID(previous, list, (d) => sink.readPath(d));
    expect(speculation).toBeDefined();
    for (const hashing of ["worker", "inline"] as const) {
      const r = await writeTarParts(chmodded, sink, { partBytes: PB, previous, speculation: speculateDiffID(previous, list, (d) => sink.readPath(d))!, hashing });
      expect(r.stats.speculationUsed).toBe(false);
      expect(r.diffID).toBe(sha(await plainTar(chmodded)));
    }
    speculation!.cancel();
  });

  it("a guess that names the wrong content (the file changed again since) is dropped", async () => {
    const { entries, list } = await edit([77]);
    const speculation = speculateDiffID(previous, list, (d) => sink.readPath(d))!;
    const f = files[77]!;
    await writeFile(path.join(dir, f.rel), Buffer.from(`edited ${f.rel}\n`.repeat(3)).fill(0x41, 0, 3)); // same size, other bytes
    // (without open(): both writers read the file as it is now)
    const again = entries.map((e) => {
      if (e.path !== `app/${f.rel}`) return e;
      const { open: _open, ...rest } = e;
      return { ...rest, fingerprint: "sha256:other" };
    });
    const r = await writeTarParts(again, sink, { partBytes: PB, previous, speculation, hashing: "worker" });
    expect(r.stats.speculationUsed).toBe(false);
    expect(r.diffID).toBe(sha(await plainTar(again)));
  });

  it("makes no guess it cannot back: unknown path, too many changes, a file whose size is not what was said", async () => {
    expect(speculateDiffID(previous, [{ type: "file", path: "zzz/not-there", size: 1, mtimeMs: 0, sourcePath: "/dev/null" }], (d) => sink.readPath(d))).toBeUndefined();
    const many = files.slice(0, 65).map((f) => ({ type: "file" as const, path: `app/${f.rel}`, size: f.data.length, mtimeMs: 0, sourcePath: path.join(dir, f.rel) }));
    expect(speculateDiffID(previous, many, (d) => sink.readPath(d))).toBeUndefined();
    const f = files[10]!;
    expect(speculateDiffID(previous, [{ type: "file", path: `app/${f.rel}`, size: f.data.length + 1, mtimeMs: 0, sourcePath: path.join(dir, f.rel) }], (d) => sink.readPath(d))).toBeUndefined();
    const noMap: TarPartsIndex = { ...previous, parts: previous.parts.map(({ first: _first, ...p }) => p) };
    expect(speculateDiffID(noMap, [{ type: "file", path: `app/${f.rel}`, size: f.data.length, mtimeMs: 0, sourcePath: path.join(dir, f.rel) }], (d) => sink.readPath(d))).toBeUndefined();
  });

  it("patches a directory's mtime (the COPY destination stamp) and a file under a PAX (long) name", async () => {
    const long = files.findIndex((f) => f.rel.includes("long-name-"));
    const { entries, list } = await edit([long]);
    const stamped = entries.map((e) => (e.path === "app" ? { ...e, mtimeMs: 1_700_000_555_000 } : e));
    const speculation = speculateDiffID(previous, [...list, { type: "dir", path: "app", mtimeMs: 1_700_000_555_000 }], (d) => sink.readPath(d));
    expect(speculation).toBeDefined();
    const r = await writeTarParts(stamped, sink, { partBytes: PB, previous, speculation: speculation!, hashing: "worker" });
    expect(r.stats.speculationUsed).toBe(true);
    expect(r.diffID).toBe(sha(await plainTar(stamped)));
  });
});

describe("header identity and length (the recipe's stand-ins for header bytes)", () => {
  it("agree with encodeEntryHeader: same identity → same bytes, and the length without encoding", async () => {
    const { encodeEntryHeader, entryHeaderIdentity, entryHeaderLength } = await import("../src/layer/tar-writer.js");
    const base: TarPartEntry = { path: "a/b.txt", type: "file", mode: 0o644, uid: 1, gid: 2, mtimeMs: 1_700_000_000_500, size: 10 };
    const variants: TarPartEntry[] = [
      base,
      { ...base, path: "a/c.txt" },
      { ...base, path: `a/${"n".repeat(120)}` },
      { ...base, path: `a/${"é".repeat(60)}` },
      { ...base, mode: 0o4755 },
      { ...base, mode: 0o100644 },
      { ...base, uid: 3 },
      { ...base, gid: 0o10000000 },
      { ...base, uid: 0o10000000 },
      { ...base, mtimeMs: 1_700_000_001_000 },
      { ...base, mtimeMs: -5000 },
      { ...base, size: 11 },
      { ...base, size: 0o100000000000 },
      { ...base, uname: "root" },
      { ...base, gname: "g".repeat(40) },
      { ...base, xattrs: { "user.a": Buffer.from([0, 1, 2]) } },
      { ...base, xattrs: { "user.a": Buffer.from([0, 1, 3]) } },
      { ...base, xattrs: {} },
      { path: "a", type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 },
      { path: "a/l", type: "symlink", linkname: "b.txt", mode: 0o777, uid: 0, gid: 0, mtimeMs: 0 },
      { path: "a/l", type: "symlink", linkname: `${"t/".repeat(60)}x`, mode: 0o777, uid: 0, gid: 0, mtimeMs: 0 },
      { path: "a/h", type: "hardlink", linkname: "a/b.txt", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, xattrs: { "user.x": Buffer.from("1") } },
      { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, mtimeMs: 0, devmajor: 1, devminor: 3 },
      { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, mtimeMs: 0, devmajor: 1, devminor: 5 },
      { path: "p", type: "fifo", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0 },
    ];
    for (const epoch of [undefined, 1_600_000_000]) {
      const seen = new Map<string, string>();
      for (const v of variants) {
        const bytes = encodeEntryHeader(v, epoch);
        expect(entryHeaderLength(v, epoch), v.path).toBe(bytes.length);
        const id = entryHeaderIdentity(v, epoch);
        const hex = bytes.toString("hex");
        if (seen.has(id)) expect(seen.get(id), `${v.path} identity ${JSON.stringify(id)}`).toBe(hex);
        seen.set(id, hex);
      }
      // Every variant that changes the header bytes also changes the identity.
      const byBytes = new Map<string, Set<string>>();
      for (const v of variants) {
        const hex = encodeEntryHeader(v, epoch).toString("hex");
        const ids = byBytes.get(hex) ?? new Set<string>();
        ids.add(entryHeaderIdentity(v, epoch));
        byBytes.set(hex, ids);
      }
      const distinctIds = new Set(variants.map((v) => entryHeaderIdentity(v, epoch)));
      expect(distinctIds.size).toBeGreaterThanOrEqual(byBytes.size);
    }
  });
});

describe("readLayerTar over a source that hands over large chunks synchronously", () => {
  it("reads every body to the end (regression: a body stalled when push() re-entered _read)", async () => {
    const { readLayerTar } = await import("../src/index.js");
    const big = randomBytes(1_500_000);
    const entries: TarPartEntry[] = [
      { path: "a", type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: 10, open: () => Readable.from([Buffer.alloc(10, 1)]) },
      { path: "b", type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: big.length, open: () => Readable.from([big]) },
    ];
    const tar = await plainTar(entries);
    let pos = 0;
    const source = new Readable({
      highWaterMark: 1 << 20,
      read() {
        if (pos >= tar.length) return void this.push(null);
        const chunk = tar.subarray(pos, pos + (1 << 20));
        pos += chunk.length;
        this.push(chunk);
      },
    });
    const got = new Map<string, Buffer>();
    for await (const { entry, body } of readLayerTar(source)) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      got.set(entry.path, Buffer.concat(chunks));
    }
    expect(got.get("b")?.equals(big)).toBe(true);
    expect(got.get("a")?.length).toBe(10);
  }, 20_000);
});
