// COPY layers are stored uncompressed as composites of parts; after a one-file change only that file's part
// is new, and the layer is byte-for-byte what a fresh store builds from the same context.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readLayerTar } from "@kiln/snapshot";
import { openStore, type KilnStore } from "@kiln/core";
import path from "node:path";
import { makeFixture, stepEnds, type Fixture } from "./support/build-fixture.js";

async function blobDigests(store: KilnStore): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const b of store.blobs.list()) out.add(b.digest);
  return out;
}

async function sha256Of(stream: NodeJS.ReadableStream): Promise<string> {
  const h = createHash("sha256");
  for await (const c of stream as AsyncIterable<Buffer>) h.update(c);
  return `sha256:${h.digest("hex")}`;
}

describe("COPY layers as parts", () => {
  let f: Fixture;
  const files = new Map<string, Buffer>();
  beforeEach(async () => {
    f = await makeFixture({ Dockerfile: "FROM scratch\nCOPY . /app/\n" });
    for (let i = 0; i < 2000; i++) {
      const rel = `src/m${i % 40}/file${i}.js`;
      const data = Buffer.from(`export const v${i} = ${JSON.stringify("x".repeat(i % 3000))};\n`);
      files.set(rel, data);
      await f.write(rel, data);
    }
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(1_500_000 + i);
      files.set(`assets/blob${i}.bin`, data);
      await f.write(`assets/blob${i}.bin`, data);
    }
  });
  afterEach(async () => f.cleanup());

  it("stores an uncompressed composite layer whose bytes hash to the diffID", async () => {
    const { result } = await f.build({ sourceDateEpoch: 1_700_000_000 });
    const layer = result.image.manifest.layers[0]!;
    expect(layer.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
    expect(layer.digest).toBe(result.image.config.rootfs.diff_ids[0]);
    const composite = await f.store.blobs.readComposite(layer.digest);
    expect(composite?.parts.length).toBeGreaterThan(3);
    expect(await sha256Of(f.store.blobs.createReadStream(layer.digest))).toBe(layer.digest);
    const seen = new Map<string, Buffer>();
    for await (const { entry, body } of readLayerTar(f.store.blobs.createReadStream(layer.digest))) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      if (entry.type === "file") seen.set(entry.path, Buffer.concat(chunks));
    }
    for (const [rel, data] of files) expect(seen.get(`app/${rel}`)?.equals(data), rel).toBe(true);
  });

  it("after a one-file change writes only that part and matches a fresh store's layer", async () => {
    await f.build({ sourceDateEpoch: 1_700_000_000 });
    const before = await blobDigests(f.store);
    const edited = Buffer.from("export const edited = true;\n");
    await f.write("src/m7/file1007.js", edited);
    files.set("src/m7/file1007.js", edited);
    const { result, events } = await f.build({ sourceDateEpoch: 1_700_000_000 });
    expect(stepEnds(events).find((e) => e.step.instruction.startsWith("COPY"))?.cached).toBe(false);
    const added = [...(await blobDigests(f.store))].filter((d) => !before.has(d));
    // The changed part (the part after it may shift by one boundary at most), the config and the manifest.
    expect(added.length).toBeGreaterThanOrEqual(3);
    expect(added.length).toBeLessThanOrEqual(5);

    const fresh = await openStore(path.join(f.dir, "fresh-store"));
    const { build } = await import("@kiln/core");
    const run = build({ context: f.context, store: fresh, sourceDateEpoch: 1_700_000_000 });
    const freshResult = await run.result;
    expect(freshResult.image.config.rootfs.diff_ids).toEqual(result.image.config.rootfs.diff_ids);
    expect(freshResult.imageId).toBe(result.imageId);
    const layer = result.image.manifest.layers[0]!;
    expect(await sha256Of(f.store.blobs.createReadStream(layer.digest))).toBe(layer.digest);
  });

  it("after a one-file edit hashes the guessed layer ahead of planning, and it is the fresh store's layer", async () => {
    // Files older than the stat cache's racy window, as in a real edit loop: only the edited file is re-read.
    await new Promise((r) => setTimeout(r, 1_100));
    await f.build({});
    for (const [i, rel] of ["src/m3/file3.js", "src/m7/file1007.js"].entries()) {
      const edited = Buffer.from(`export const edited${i} = ${"1".repeat(50 + i)};\n`);
      await f.write(rel, edited);
      const { result, events } = await f.build({});
      const copy = stepEnds(events).find((e) => e.step.instruction.startsWith("COPY"));
      expect(copy?.cached).toBe(false);
      expect(copy?.parts?.speculated).toBe(true);
      expect(copy?.parts?.reused).toBeGreaterThan((copy?.parts?.total ?? 0) - 3);
      const fresh = await openStore(path.join(f.dir, `fresh-store-${i}`));
      const { build } = await import("@kiln/core");
      const freshResult = await build({ context: f.context, store: fresh }).result;
      expect(freshResult.image.config.rootfs.diff_ids).toEqual(result.image.config.rootfs.diff_ids);
      const layer = result.image.manifest.layers[0]!;
      expect(await sha256Of(f.store.blobs.createReadStream(layer.digest))).toBe(layer.digest);
    }
    // Rewritten with the same bytes: read again (so a guess is started) but a cache hit, which drops it.
    await f.write("src/m3/file3.js", Buffer.from(`export const edited0 = ${"1".repeat(50)};\n`));
    const again = await f.build({});
    const copy = stepEnds(again.events).find((e) => e.step.instruction.startsWith("COPY"));
    expect(copy?.cached).toBe(true);
    expect(copy?.parts).toBeUndefined();
  });

  it("GC keeps a recorded composite's parts and removes them with the record", async () => {
    const { cacheUsage, collectGarbage, pruneCache } = await import("@kiln/cache");
    const { result } = await f.build({ tags: ["parts:1"] });
    const layer = result.image.manifest.layers[0]!;
    const composite = (await f.store.blobs.readComposite(layer.digest))!;
    // du counts the composite's parts once, not zero (the record names only the composite).
    const usage = await cacheUsage(f.store.blobs);
    expect(usage.totalSize).toBeGreaterThanOrEqual(layer.size);
    expect(usage.totalSize).toBeLessThan(layer.size * 1.5);
    await collectGarbage(f.store.blobs);
    expect(await sha256Of(f.store.blobs.createReadStream(layer.digest))).toBe(layer.digest);
    for (const p of composite.parts) expect(f.store.blobs.filePath(p.digest)).toBeDefined();

    await f.store.tags.delete("docker.io/library/parts:1");
    await pruneCache(f.store.blobs, { all: true });
    expect(await f.store.blobs.has(layer.digest)).toBe(false);
    for (const p of composite.parts) expect(f.store.blobs.filePath(p.digest)).toBeUndefined();
  });
});
