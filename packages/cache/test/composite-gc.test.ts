// GC, prune, check and du over composite blobs, with real files in a real store.
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BlobNotFoundError,
  BlobStore,
  CacheIndex,
  CompositeBlobError,
  Lease,
  TagStore,
  cacheDuCommand,
  cacheUsage,
  checkStore,
  collectGarbage,
  computeDigest,
  digestHex,
  pruneCache,
  type CompositePart,
  type Digest,
} from "../src/index.js";
import { ageFile } from "./gc-helpers.js";

const HOUR = 3_600_000;
const sha = (data: Buffer): Digest => `sha256:${createHash("sha256").update(data).digest("hex")}`;

let root: string;
let store: BlobStore;
let index: CacheIndex;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-composite-gc-"));
  store = await BlobStore.open(root);
  index = await CacheIndex.open(store);
});
afterEach(async () => rm(root, { recursive: true, force: true }));

const recordPath = (d: Digest): string => join(root, "composites", "sha256", `${digestHex(d)}.json`);

interface Part extends CompositePart {
  bytes: Buffer;
}

/** A regular blob back-dated an hour, so only roots (not recency) keep it. */
async function part(size: number): Promise<Part> {
  const bytes = randomBytes(size);
  const { digest } = await store.writeBytes(bytes);
  await ageFile(store.path(digest), HOUR);
  return { digest, size, bytes };
}

/** A composite of `parts`, its record back-dated an hour unless `fresh`. */
async function composite(parts: Part[], fresh = false): Promise<Digest> {
  const digest = sha(Buffer.concat(parts.map((p) => p.bytes)));
  await store.writeComposite(digest, parts.map(({ digest: d, size }) => ({ digest: d, size })));
  if (!fresh) await ageFile(recordPath(digest), HOUR);
  return digest;
}

let seq = 0;
async function record(blobs: Digest[]): Promise<Digest> {
  const key = computeDigest(`key-${++seq}-${Math.random()}`);
  await index.put({ key, parent: null, inputs: { instruction: `COPY step ${seq}`, buildArgs: {} }, result: { created: "x" }, blobs });
  return key;
}

async function present(digests: Digest[]): Promise<boolean[]> {
  return Promise.all(digests.map((d) => store.has(d)));
}

describe("collectGarbage with composites", () => {
  it("keeps a reachable composite's parts, drops an unreachable one, and keeps a shared part while either needs it", async () => {
    const [a, b, c] = [await part(1000), await part(2000), await part(3000)];
    const ab = await composite([a, b]);
    const bc = await composite([b, c]);
    const r1 = await record([ab]);
    const r2 = await record([bc]);
    const all = [a.digest, b.digest, c.digest, ab, bc];

    let gc = await collectGarbage(store);
    expect(gc.removedBlobs).toEqual([]);
    expect(await present(all)).toEqual([true, true, true, true, true]);

    await index.delete(r1);
    gc = await collectGarbage(store);
    expect(new Set(gc.removedBlobs)).toEqual(new Set([ab, a.digest]));
    expect(gc.freedBytes).toBe(1000);
    expect(await present(all)).toEqual([false, true, true, false, true]);
    expect((await store.readBytes(bc)).equals(Buffer.concat([b.bytes, c.bytes]))).toBe(true);

    await index.delete(r2);
    gc = await collectGarbage(store);
    expect(new Set(gc.removedBlobs)).toEqual(new Set([bc, b.digest, c.digest]));
    expect(await readdir(join(root, "composites", "sha256"))).toEqual([]);
    expect(await readdir(join(root, "blobs", "sha256"))).toEqual([]);
  });

  it("keeps composites reached from a tagged manifest or named in a live lease", async () => {
    const [a, b, c, d] = [await part(100), await part(200), await part(300), await part(400)];
    const layer = await composite([a, b]);
    const leased = await composite([c, d]);
    const config = await store.writeJson({ rootfs: { type: "layers", diff_ids: [layer] } });
    const manifest = await store.writeJson({
      schemaVersion: 2,
      config: { digest: config.digest, size: config.size },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layer, size: 300 }],
    });
    for (const r of [config, manifest]) await ageFile(store.path(r.digest), HOUR);
    await (await TagStore.open(store)).set("example.com/app:1", { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: manifest.digest, size: manifest.size });
    const lease = await Lease.acquire(store);
    try {
      await lease.add([leased]);
      const gc = await collectGarbage(store);
      expect(gc.removedBlobs).toEqual([]);
      expect(await present([layer, leased, a.digest, b.digest, c.digest, d.digest])).toEqual([true, true, true, true, true, true]);
    } finally {
      await lease.release();
    }
    const gc = await collectGarbage(store);
    expect(new Set(gc.removedBlobs)).toEqual(new Set([leased, c.digest, d.digest]));
    expect(await store.verify(layer)).toBe(true);
  });

  it("under a lease, keeps new parts before their composite exists and reused parts once leased; a fresh record keeps its parts", async () => {
    const reused = await part(500);
    const unleased = await part(600);
    const lease = await Lease.acquire(store);
    try {
      // The build reuses an old part (leased first, as Lease.add asks) and writes a new one after the lease began.
      await lease.add([reused.digest]);
      const fresh = randomBytes(700);
      const freshDigest = (await store.writeBytes(fresh)).digest;
      // GC runs between the parts and the composite record.
      await collectGarbage(store);
      expect(await present([reused.digest, freshDigest, unleased.digest])).toEqual([true, true, false]);
      const whole = Buffer.concat([reused.bytes, fresh]);
      await store.writeComposite(sha(whole), [{ digest: reused.digest, size: 500 }, { digest: freshDigest, size: 700 }], { verify: true });
      // A part nobody leased may be gone by the time the composite is written: the write fails, never records a hole.
      const holey = Buffer.concat([unleased.bytes, fresh]);
      await expect(store.writeComposite(sha(holey), [{ digest: unleased.digest, size: 600 }, { digest: freshDigest, size: 700 }])).rejects.toBeInstanceOf(BlobNotFoundError);
      // The new composite record is younger than the lease: kept with its parts even before it is leased.
      await ageFile(store.path(freshDigest), HOUR);
      await collectGarbage(store);
      expect((await store.readBytes(sha(whole))).equals(whole)).toBe(true);
    } finally {
      await lease.release();
    }
    // Without the lease nothing keeps them.
    await collectGarbage(store);
    expect(await readdir(join(root, "blobs", "sha256"))).toEqual([]);
    expect(await readdir(join(root, "composites", "sha256"))).toEqual([]);
  });

  it("graceMs keeps a young composite record and its old parts; an unreadable record goes only when unreachable", async () => {
    const [a, b] = [await part(100), await part(200)];
    const young = await composite([a, b], true);
    let gc = await collectGarbage(store, { graceMs: 60_000 });
    expect(gc.removedBlobs).toEqual([]);
    await ageFile(recordPath(young), HOUR);
    gc = await collectGarbage(store, { graceMs: 60_000 });
    expect(new Set(gc.removedBlobs)).toEqual(new Set([young, a.digest, b.digest]));

    const junk = computeDigest("junk composite");
    const kept = computeDigest("kept junk composite");
    for (const d of [junk, kept]) {
      await writeFile(recordPath(d), "{not json");
      await ageFile(recordPath(d), HOUR);
    }
    await expect(store.has(junk)).rejects.toBeInstanceOf(CompositeBlobError);
    await record([kept]);
    gc = await collectGarbage(store);
    expect(gc.removedBlobs).toEqual([junk]);
    expect(await readdir(join(root, "composites", "sha256"))).toEqual([`${digestHex(kept)}.json`]);
  });
});

describe("checkStore with composites", () => {
  it("reports a composite with a missing, tampered or resized part, or an unreadable record, and repair removes them", async () => {
    const [a, b, c, d, e, f] = [await part(100), await part(200), await part(300), await part(400), await part(500), await part(600)];
    const good = await composite([a, b]);
    const lost = await composite([c, b]);
    const tampered = await composite([d, b]);
    const resized = await composite([e, f]);
    const unreadable = computeDigest("unreadable");
    await writeFile(recordPath(unreadable), JSON.stringify({ version: 1, digest: unreadable, size: 5, parts: [] }));
    const rGood = await record([good]);
    const rLost = await record([lost]);

    await store.delete(c.digest);
    await chmod(store.path(d.digest), 0o644);
    await writeFile(store.path(d.digest), randomBytes(400));
    // A record claiming the wrong length for an existing part (as if the part had been swapped for another size).
    const resizedRecord = JSON.parse(await readFile(recordPath(resized), "utf8")) as { size: number; parts: [Digest, number][] };
    resizedRecord.parts[1]![1] = 601;
    resizedRecord.size += 1;
    await rm(recordPath(resized));
    await writeFile(recordPath(resized), JSON.stringify(resizedRecord));

    const result = await checkStore(store);
    expect(result.ok).toBe(false);
    const corrupt = result.issues.filter((i) => i.kind === "corrupt-blob").map((i) => (i as { digest: Digest }).digest);
    // The tampered part is reported as a regular blob too.
    expect(new Set(corrupt)).toEqual(new Set([lost, tampered, resized, unreadable, d.digest]));
    expect(result.issues.filter((i) => i.kind === "missing-blob")).toEqual([]);

    const repaired = await checkStore(store, { repair: true });
    expect(repaired.issues.length).toBe(result.issues.length + 1); // + the record whose composite was just removed
    expect(repaired.issues.find((i) => i.kind === "missing-blob")).toMatchObject({ digest: lost, record: rLost });
    expect(await present([good, lost, tampered, resized, unreadable])).toEqual([true, false, false, false, false]);
    expect(await index.get(rGood)).toBeDefined();
    expect(await index.get(rLost)).toBeUndefined();
    expect((await checkStore(store)).ok).toBe(true);
  });
});

describe("usage and prune with composites", () => {
  it("count each part file once; composite records take no space", async () => {
    const [a, b, c] = [await part(1000), await part(20_000), await part(300)];
    const ab = await composite([a, b]);
    const bc = await composite([b, c]);
    await record([ab]);
    await record([bc]);
    const usage = await cacheUsage(store);
    expect(usage.storeBlobs).toBe(3);
    expect(usage.storeComposites).toBe(2);
    expect(usage.storeSize).toBe(21_300);
    expect(usage.totalSize).toBe(21_300);
    expect(usage.records.map((r) => r.size).sort((x, y) => x - y)).toEqual([20_300, 21_000]);
    expect(usage.records.every((r) => r.shared)).toBe(true);
    expect(await cacheDuCommand(store)).toContain("(+2 composite, stored as their parts)");

    // Prune to a budget counts stored bytes: dropping one record frees only its unshared part.
    const pruned = await pruneCache(store, { keepStorage: 21_000 });
    expect(pruned.removedRecords.length).toBe(1);
    expect([21_300 - 1000, 21_300 - 300]).toContain(pruned.keptBytes);
    expect(pruned.gc.removedBlobs.length).toBe(2);
    expect((await cacheUsage(store)).storeSize).toBe(pruned.keptBytes);
  });
});
