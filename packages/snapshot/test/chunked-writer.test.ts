import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  parseChunkIndex,
  serializeChunkIndex,
  writeChunkedLayerBlob,
  writeLayerTar,
  type ChunkedLayerEntry,
  type ChunkedLayerInfo,
  type PreviousChunkedLayer,
  type WriteChunkedLayerOptions,
} from "../src/index.js";
import { T0, collect, dir, file, memorySink, sha256, symlink } from "./layer-helpers.js";

/** Deterministic pseudo-random, moderately compressible bytes (hex text of a sha256 stream). */
function bytes(seed: number, size: number): Buffer {
  const parts: Buffer[] = [];
  let len = 0;
  for (let i = 0; len < size; i++) {
    const part = Buffer.from(createHash("sha256").update(`${seed}:${i}`).digest("hex").repeat(1 + (i % 3)));
    parts.push(part);
    len += part.length;
  }
  return Buffer.concat(parts, len).subarray(0, size);
}

function mixedEntries(): ChunkedLayerEntry[] {
  const longDir = `deep/${"x".repeat(120)}`;
  return [
    dir("app"),
    { ...file("app/a.txt", "hello\n"), fingerprint: "fp-a" },
    file("app/empty", ""),
    file("app/big.bin", bytes(1, 300_000)), // > chunkBytes: split inside its content
    symlink("app/link", "a.txt"),
    { ...file("app/hard", ""), type: "hardlink", linkname: "app/a.txt", size: 0 },
    dir("deep"),
    dir(longDir),
    file(`${longDir}/${"y".repeat(90)}.js`, bytes(2, 5000)), // PAX path
    file("app/caps", "x", { xattrs: { "security.capability": Buffer.from([1, 0, 0, 2, 0xff]) } }),
    ...Array.from({ length: 200 }, (_, i) => file(`app/src/f${String(i).padStart(4, "0")}.js`, bytes(i + 10, 100 + ((i * 977) % 9000)))),
  ];
}

async function chunked(entries: ChunkedLayerEntry[], options: WriteChunkedLayerOptions = {}): Promise<{ info: ChunkedLayerInfo; blob: Buffer }> {
  const sink = memorySink();
  const info = await writeChunkedLayerBlob(entries, sink, options);
  return { info, blob: sink.data() };
}

function previousOf(blob: Buffer, info: ChunkedLayerInfo): PreviousChunkedLayer {
  return {
    index: parseChunkIndex(serializeChunkIndex(info.index)),
    openBlobRange: (start, end) => Readable.from([blob.subarray(start, end)]),
  };
}

/** Splits a blob into its gzip members using the index and checks each is a complete gzip stream. */
function memberCount(blob: Buffer, info: ChunkedLayerInfo): number {
  for (const m of info.index.members) {
    const part = blob.subarray(m.compressedOffset, m.compressedOffset + m.compressedLength);
    expect(part.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(sha256(gunzipSync(part))).toBe(m.uncompressedDigest);
  }
  return info.index.members.length;
}

describe("writeChunkedLayerBlob", () => {
  it("produces writeLayerTar's exact tar (same diffID) as several gzip members", async () => {
    const tar = await collect(writeLayerTar(mixedEntries()));
    const { info, blob } = await chunked(mixedEntries(), { chunkBytes: 64 << 10 });
    expect(info.diffID).toBe(sha256(tar));
    expect(info.uncompressedSize).toBe(tar.length);
    expect(info.digest).toBe(sha256(blob));
    expect(info.size).toBe(blob.length);
    expect(info.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    expect(gunzipSync(blob).equals(tar)).toBe(true);
    expect(memberCount(blob, info)).toBeGreaterThan(5);

    // The big file spans several members, cut at fixed content offsets.
    const parts = info.index.members.flatMap((m) => m.entries).filter((e) => e.path === "app/big.bin");
    expect(parts.map((p) => p.contentOffset ?? 0)).toEqual([0, 65536, 131072, 196608, 262144]);
    const a = info.index.members.flatMap((m) => m.entries).find((e) => e.path === "app/a.txt");
    expect(a?.fingerprint).toBe("fp-a");
    expect(a?.header).toMatch(/^[0-9a-f]{64}$/);
    expect(info.index.members.flatMap((m) => m.entries).some((e) => e.path === "app/")).toBe(true);
  });

  it("is read as one stream by gzip -dc and tar -tz", async () => {
    const tar = await collect(writeLayerTar(mixedEntries()));
    const { info, blob } = await chunked(mixedEntries(), { chunkBytes: 64 << 10 });
    expect(info.index.members.length).toBeGreaterThan(1);
    const tmp = await mkdtemp(join(tmpdir(), "kiln-chunked-"));
    try {
      const path = join(tmp, "layer.tar.gz");
      await writeFile(path, blob);
      const gz = spawnSync("gzip", ["-dc", path], { maxBuffer: 64 << 20 });
      expect(gz.status).toBe(0);
      expect(Buffer.compare(gz.stdout, tar)).toBe(0);
      const list = spawnSync("tar", ["-tzf", path], { encoding: "utf8", maxBuffer: 64 << 20 });
      expect(list.status).toBe(0);
      const names = list.stdout.trim().split("\n");
      expect(names).toHaveLength(mixedEntries().length);
      expect(names).toContain(`deep/${"x".repeat(120)}/${"y".repeat(90)}.js`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("unpacks with umoci (Go's gzip reader) from an OCI layout", async () => {
    const probe = spawnSync("umoci", ["--version"]);
    if (probe.error) {
      if (process.env.CI === "true") throw new Error("umoci is required in CI");
      console.warn("umoci not installed: skipping the umoci unpack check");
      return;
    }
    // The made-up security.capability value would be rejected by the kernel, not by the reader.
    const entries = mixedEntries().filter((e) => e.path !== "app/caps");
    const { info, blob } = await chunked(entries, { chunkBytes: 64 << 10 });
    expect(info.index.members.length).toBeGreaterThan(5);
    const tmp = await mkdtemp(join(tmpdir(), "kiln-chunked-oci-"));
    try {
      const layout = join(tmp, "layout");
      await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
      const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
        const digest = sha256(data);
        await writeFile(join(layout, "blobs", "sha256", digest.slice(7)), data);
        return { digest, size: data.length };
      };
      const layer = await put(blob);
      const config = await put(
        Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [info.diffID] } })),
      );
      const manifest = await put(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
            layers: [{ mediaType: info.mediaType, ...layer }],
          }),
        ),
      );
      await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      await writeFile(
        join(layout, "index.json"),
        JSON.stringify({
          schemaVersion: 2,
          manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": "t" } }],
        }),
      );
      const bundle = join(tmp, "bundle");
      const run = spawnSync("umoci", ["unpack", "--rootless", "--image", `${layout}:t`, bundle], { encoding: "utf8" });
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
      const rootfs = join(bundle, "rootfs");
      // Files from the first, a middle and the last member all arrive intact.
      expect((await readFile(join(rootfs, "app/a.txt"), "utf8"))).toBe("hello\n");
      expect((await readFile(join(rootfs, "app/big.bin"))).equals(bytes(1, 300_000))).toBe(true);
      expect((await readFile(join(rootfs, "app/src/f0199.js"))).equals(bytes(209, 100 + ((199 * 977) % 9000)))).toBe(true);
      expect((await readFile(join(rootfs, `deep/${"x".repeat(120)}/${"y".repeat(90)}.js`))).equals(bytes(2, 5000))).toBe(true);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("writes the same bytes for any worker count", async () => {
    const one = await chunked(mixedEntries(), { chunkBytes: 64 << 10, workers: 1 });
    const three = await chunked(mixedEntries(), { chunkBytes: 64 << 10, workers: 3 });
    expect(three.blob.equals(one.blob)).toBe(true);
    expect(three.info.index).toEqual(one.info.index);
  });

  it("clamps mtimes with sourceDateEpoch like writeLayerTar", async () => {
    const epoch = Math.floor(T0 / 1000) - 3600;
    const tar = await collect(writeLayerTar(mixedEntries(), { sourceDateEpoch: epoch }));
    const { info } = await chunked(mixedEntries(), { sourceDateEpoch: epoch });
    expect(info.diffID).toBe(sha256(tar));
  });

  it("reads sourcePath files synchronously with the same bytes as open()", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "kiln-chunked-src-"));
    try {
      const contents = [bytes(7, 10), bytes(8, 3 << 20), Buffer.alloc(0)];
      const entries: ChunkedLayerEntry[] = [];
      for (const [i, c] of contents.entries()) {
        const p = join(tmp, `f${i}`);
        await writeFile(p, c);
        const { open: _open, ...meta } = file(`f${i}`, c);
        entries.push({ ...meta, sourcePath: p });
      }
      const viaOpen = await chunked(contents.map((c, i) => file(`f${i}`, c)));
      const viaPath = await chunked(entries);
      expect(viaPath.blob.equals(viaOpen.blob)).toBe(true);

      // A file that no longer matches its declared size is an error, as with open().
      await writeFile(join(tmp, "f0"), "longer than ten bytes");
      await expect(chunked(entries)).rejects.toThrow(/longer than the declared size/);
      await writeFile(join(tmp, "f0"), "short");
      await expect(chunked(entries)).rejects.toThrow(/has 5 bytes but the declared size is 10/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("rejects a pre-aborted signal and aborts mid-write", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(chunked(mixedEntries(), { signal: ac.signal })).rejects.toThrow(/abort/i);

    const ac2 = new AbortController();
    let reads = 0;
    const entries = Array.from({ length: 400 }, (_, i) =>
      file(`f${i}`, bytes(i, 20_000), {
        open: () => {
          if (++reads === 50) ac2.abort();
          return Readable.from([bytes(i, 20_000)]);
        },
      }),
    );
    await expect(chunked(entries, { signal: ac2.signal, chunkBytes: 64 << 10 })).rejects.toThrow(/abort/i);
    expect(reads).toBeLessThan(400);
  });

  it("keeps memory bounded to a few members", async () => {
    const chunkBytes = 256 << 10;
    const workers = 2;
    const total = 48 << 20;
    const entries = Array.from({ length: 1536 }, (_, i) => {
      const size = (i % 7 === 0 ? 200_000 : 20_000) + (i % 13) * 512;
      const data = bytes(i, size);
      return file(`data/${String(i).padStart(5, "0")}`, data);
    });
    const layerBytes = entries.reduce((n, e) => n + e.size!, 0);
    expect(layerBytes).toBeGreaterThan(total / 2);
    const { info } = await chunked(entries, { chunkBytes, workers });
    // Queue of workers + 2 members, one being cut and one just cut; a member is < 5 × chunkBytes.
    expect(info.stats.peakBufferedBytes).toBeLessThanOrEqual((workers + 4) * 5 * chunkBytes);
    expect(info.stats.peakBufferedBytes).toBeLessThan(layerBytes / 4);
    expect(info.stats.members).toBeGreaterThan(layerBytes / (2 * chunkBytes));
  });
});

describe("incremental chunked writes", () => {
  const N = 5000;
  const base = (i: number): Buffer => bytes(i, 200 + ((i * 7919) % 12_000));
  const layer = (override: Map<number, Buffer> = new Map(), extra: ChunkedLayerEntry[] = []): ChunkedLayerEntry[] => [
    dir("src"),
    ...Array.from({ length: N }, (_, i) => {
      const data = override.get(i) ?? base(i);
      return { ...file(`src/m${i % 37}/f${String(i).padStart(5, "0")}.ts`, data), fingerprint: sha256(data) };
    }),
    ...extra,
  ];
  let cold: { info: ChunkedLayerInfo; blob: Buffer };

  beforeAll(async () => {
    cold = await chunked(layer());
  });
  afterAll(() => {
    cold = undefined as never;
  });

  it("after a same-size edit recompresses exactly one member and matches a from-scratch write", async () => {
    expect(cold.info.stats.members).toBeGreaterThan(10);
    expect(cold.info.stats.compressedMembers).toBe(cold.info.stats.members);
    const edited = Buffer.from(base(2500));
    edited[10] = edited[10]! ^ 1;
    const changed = layer(new Map([[2500, edited]]));
    const scratch = await chunked(changed);
    const inc = await chunked(changed, { previous: previousOf(cold.blob, cold.info) });
    expect(inc.blob.equals(scratch.blob)).toBe(true);
    expect(inc.info.diffID).toBe(sha256(await collect(writeLayerTar(changed))));
    expect(inc.info.index).toEqual(scratch.info.index);
    expect(inc.info.stats.compressedMembers).toBe(1);
    expect(inc.info.stats.reusedMembers).toBe(inc.info.stats.members - 1);
    expect(inc.info.stats.reuseFallbacks).toBe(0);
    expect(scratch.blob.equals(cold.blob)).toBe(false);
    expect(gunzipSync(inc.blob).equals(await collect(writeLayerTar(changed)))).toBe(true);
  });

  it("after a resize and an added file recompresses only the members around them", async () => {
    const changed = layer(new Map([[1234, bytes(99, 30_000)]]), [file("src/m5/new-file.ts", bytes(5, 4000))]);
    const scratch = await chunked(changed, { workers: 1 });
    const inc = await chunked(changed, { previous: previousOf(cold.blob, cold.info), workers: 3 });
    expect(inc.blob.equals(scratch.blob)).toBe(true);
    expect(inc.info.stats.compressedMembers).toBeGreaterThanOrEqual(2);
    expect(inc.info.stats.compressedMembers).toBeLessThanOrEqual(4);
    expect(inc.info.stats.reusedMembers).toBe(inc.info.stats.members - inc.info.stats.compressedMembers);
  });

  it("falls back to deflating when the previous blob is corrupt or gone, with the same bytes", async () => {
    const damaged = Buffer.from(cold.blob);
    const victim = cold.info.index.members[3]!;
    damaged[victim.compressedOffset + 20] = damaged[victim.compressedOffset + 20]! ^ 0xff;
    const prev = previousOf(damaged, cold.info);
    const inc = await chunked(layer(), { previous: prev });
    expect(inc.blob.equals(cold.blob)).toBe(true);
    expect(inc.info.stats.reuseFallbacks).toBe(1);
    expect(inc.info.stats.compressedMembers).toBe(1);

    const gone: PreviousChunkedLayer = {
      index: cold.info.index,
      openBlobRange: () => {
        throw new Error("blob not found");
      },
    };
    const again = await chunked(layer(), { previous: gone });
    expect(again.blob.equals(cold.blob)).toBe(true);
    expect(again.info.stats.reusedMembers).toBe(0);
  });

  it("does not reuse members deflated at another level", async () => {
    const inc = await chunked(layer(), { previous: previousOf(cold.blob, cold.info), level: 1 });
    expect(inc.info.stats.reusedMembers).toBe(0);
    expect(inc.info.diffID).toBe(cold.info.diffID);
  });
});

describe("parseChunkIndex", () => {
  it("round-trips and rejects members that do not tile the blob", async () => {
    const { info } = await chunked(mixedEntries(), { chunkBytes: 64 << 10 });
    expect(parseChunkIndex(serializeChunkIndex(info.index))).toEqual(info.index);
    const broken = structuredClone(info.index);
    broken.members[1]!.compressedOffset += 1;
    expect(() => parseChunkIndex(JSON.stringify(broken))).toThrow(/member 1/);
    expect(() => parseChunkIndex("{")).toThrow(/not JSON/);
    expect(() => parseChunkIndex(JSON.stringify({ ...info.index, version: 9 }))).toThrow(/version/);
    expect(createHash("sha256").update(serializeChunkIndex(info.index)).digest("hex")).toMatch(/^[0-9a-f]{64}$/);
  });
});
