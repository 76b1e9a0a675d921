import { describe, expect, it } from "vitest";
import { writeLayerTar, type LayerEntry } from "../src/index.js";
import { TarMemberCutter, type RawMember } from "../src/layer/chunked-cutter.js";
import { collect, dir, file, sha256, symlink } from "./layer-helpers.js";

const content = (seed: number, size: number): Buffer => Buffer.from(sha256(Buffer.from(String(seed))).repeat(Math.ceil(size / 71) + 1)).subarray(0, size);

function entries(): LayerEntry[] {
  return [
    dir("a"),
    ...Array.from({ length: 300 }, (_, i) => file(`a/f${i}`, content(i, (i * 389) % 7000))),
    file("a/huge", content(7, 200_000)),
    symlink(`a/${"l".repeat(150)}`, "f1"), // PAX path
    file("b", content(9, 10), { xattrs: { "user.k": Buffer.from("v") } }), // PAX xattr
  ];
}

function cut(tar: Buffer, pieceSizes: (i: number) => number, chunkBytes = 64 << 10): RawMember[] {
  const cutter = new TarMemberCutter(chunkBytes, (p) => (p === "b" ? "fp-b" : undefined));
  const out: RawMember[] = [];
  for (let pos = 0, i = 0; pos < tar.length; i++) {
    const n = Math.max(1, pieceSizes(i));
    cutter.push(tar.subarray(pos, pos + n));
    pos += n;
    out.push(...cutter.ready.splice(0));
  }
  cutter.end();
  out.push(...cutter.ready.splice(0));
  return out;
}

const shape = (ms: RawMember[]) => ms.map((m) => ({ offset: m.offset, length: m.length, digest: m.digest, entries: m.entries }));

describe("TarMemberCutter", () => {
  it("tiles the tar and cuts at the same places however the stream is chunked", async () => {
    const tar = await collect(writeLayerTar(entries()));
    const whole = cut(tar, () => tar.length);
    expect(Buffer.concat(whole.map((m) => m.data)).equals(tar)).toBe(true);
    expect(whole.length).toBeGreaterThan(4);
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return 1 + (seed % 700);
    };
    for (const sizes of [() => 1, () => 511, () => 513, random]) {
      const members = cut(tar, sizes);
      expect(shape(members)).toEqual(shape(whole));
      for (const m of members) expect(sha256(m.data)).toBe(m.digest);
    }
  });

  it("splits a big file at fixed content offsets and records PAX paths and fingerprints", async () => {
    const tar = await collect(writeLayerTar(entries()));
    const members = cut(tar, () => 4096);
    const huge = members.filter((m) => m.entries.some((e) => e.path === "a/huge"));
    expect(huge.map((m) => m.entries.find((e) => e.path === "a/huge")!.contentOffset ?? 0)).toEqual([0, 65536, 131072, 196608]);
    // Its members hold nothing else: the file's own runs line up across builds.
    for (const m of huge) expect(m.entries).toHaveLength(1);
    const all = members.flatMap((m) => m.entries);
    expect(all.some((e) => e.path === `a/${"l".repeat(150)}`)).toBe(true);
    expect(all.find((e) => e.path === "b")?.fingerprint).toBe("fp-b");
    expect(all.find((e) => e.path === "a/")).toBeDefined();
  });

  it("keeps boundaries away from an edited file where they were", async () => {
    const before = cut(await collect(writeLayerTar(entries())), () => 65536);
    const edited = entries().map((e) => (e.path === "a/f150" ? file("a/f150", content(999, 1234)) : e));
    const after = cut(await collect(writeLayerTar(edited)), () => 65536);
    const known = new Set(before.map((m) => m.digest));
    const changed = after.filter((m) => !known.has(m.digest));
    expect(changed.length).toBeGreaterThanOrEqual(1);
    expect(changed.length).toBeLessThanOrEqual(2);
    expect(changed.some((m) => m.entries.some((e) => e.path === "a/f150"))).toBe(true);
  });

  it("rejects a stream without the end-of-archive blocks", async () => {
    const tar = await collect(writeLayerTar([file("x", "y")]));
    const cutter = new TarMemberCutter(64 << 10, () => undefined);
    cutter.push(tar.subarray(0, 1024));
    expect(() => cutter.end()).toThrow(/end-of-archive/);
  });
});
