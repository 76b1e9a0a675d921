import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BlobStore,
  CacheIndex,
  Lease,
  RemoteBlobIndex,
  TagStore,
  cacheCheckCommand,
  cacheDuCommand,
  cachePruneCommand,
  cacheUsage,
  checkStore,
  collectGarbage,
  computeDigest,
  digestHex,
  formatSize,
  parseDuration,
  parseSize,
  pruneCache,
  pruneOptionsFromFlags,
  InvalidUnitError,
  type Digest,
} from "../src/index.js";
import { ageFile, ageRecord, deadPid } from "./gc-helpers.js";

const HOUR = 3_600_000;
let root: string;
let store: BlobStore;
let index: CacheIndex;
let tags: TagStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-gc-"));
  store = await BlobStore.open(root);
  index = await CacheIndex.open(store);
  tags = await TagStore.open(store);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

let seq = 0;
/** A blob of `size` distinct bytes, back-dated an hour so only roots (not recency) keep it. */
async function blob(size = 1000, label = `blob-${++seq}`): Promise<Digest> {
  const bytes = Buffer.alloc(size, 0);
  bytes.write(`${label}-${Math.random()}`);
  const { digest } = await store.writeBytes(bytes);
  await ageFile(store.path(digest), HOUR);
  return digest;
}

async function json(value: unknown): Promise<{ digest: Digest; size: number }> {
  const r = await store.writeJson(value);
  await ageFile(store.path(r.digest), HOUR);
  return { digest: r.digest, size: r.size };
}

async function image(layers: Digest[], diffIDs: Digest[]): Promise<{ manifest: { digest: Digest; size: number }; config: Digest }> {
  const config = await json({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: diffIDs } });
  const manifest = await json({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config.digest, size: config.size },
    layers: layers.map((d) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d, size: 1000 })),
  });
  return { manifest, config: config.digest };
}

async function record(blobs: Digest[], extra: { filesIndex?: Digest; diffID?: Digest; instruction?: string } = {}): Promise<Digest> {
  const key = computeDigest(`key-${++seq}-${Math.random()}`);
  await index.put({
    key,
    parent: null,
    inputs: { instruction: extra.instruction ?? `RUN step ${seq}`, buildArgs: {}, ...(extra.filesIndex ? { filesIndex: extra.filesIndex } : {}) },
    result: blobs[0] ? { layer: { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: blobs[0], size: 1000, diffID: extra.diffID ?? computeDigest(`diff-${blobs[0]}`) }, created: "2024-01-01T00:00:00Z" } : { created: "x" },
    blobs,
  });
  return key;
}

async function unpacked(diffID: Digest, source: Digest): Promise<string> {
  const dir = join(root, "layers", digestHex(diffID));
  await mkdir(join(dir, "fs", "etc"), { recursive: true });
  await writeFile(join(dir, "fs", "etc", "hello"), "hi");
  await writeFile(join(dir, ".kiln-complete"), source);
  await ageFile(dir, HOUR);
  return dir;
}

async function exists(path: string): Promise<boolean> {
  return readdir(join(path, "..")).then((names) => names.includes(path.split("/").at(-1)!));
}

describe("collectGarbage", () => {
  it("keeps tagged, recorded and leased blobs and everything they need; removes the rest and crash leftovers", async () => {
    // Tag "app" → manifest → config + 2 layers; tag "multi" → index → manifest → config + layer.
    const [l1, l2, l3] = [await blob(), await blob(), await blob()];
    const [d1, d2, d3] = [computeDigest("d1"), computeDigest("d2"), computeDigest("d3")];
    const app = await image([l1, l2], [d1, d2]);
    const inner = await image([l3], [d3]);
    const idx = await json({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...inner.manifest }] });
    await tags.set("example.com/app:1", { mediaType: "application/vnd.oci.image.manifest.v1+json", ...app.manifest });
    await tags.set("example.com/multi:1", { mediaType: "application/vnd.oci.image.index.v1+json", ...idx });
    // A record with a layer and a COPY files index.
    const l4 = await blob();
    const files = await json({ "/a": "sha256:00" });
    const d4 = computeDigest("d4");
    await record([l4], { filesIndex: files.digest, diffID: d4 });
    // Leased by this (live) process.
    const l5 = await blob();
    const lease = await Lease.acquire(store);
    await lease.add([l5]);
    // Garbage, and a lease of a dead process.
    const g1 = await blob();
    const g2 = await blob(5000);
    const g3 = await blob();
    const dead = await deadPid();
    await mkdir(join(root, "leases"), { recursive: true });
    const deadLease = join(root, "leases", `${dead}-abc.json`);
    await writeFile(deadLease, JSON.stringify({ version: 1, pid: dead, hostname: (await import("node:os")).hostname(), createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), digests: [g3] }));

    // Unpacked layers: one per needed diffID, one for garbage, one half-extracted by a dead process.
    const keepDirs = [await unpacked(d1, l1), await unpacked(d4, l4)];
    const gDiff = computeDigest("garbage-diff");
    const dropDir = await unpacked(gDiff, g1);
    const halfDir = join(root, "layers", `${digestHex(computeDigest("half"))}.tmp-${dead}-1234`);
    await mkdir(join(halfDir, "fs"), { recursive: true });
    // Layer listings / figures by diffID, and ingest/tmp leftovers of the dead process.
    for (const sub of ["layer-listing", "layer-sizes"]) {
      await mkdir(join(root, sub), { recursive: true });
      for (const d of [d1, d3, gDiff]) await writeFile(join(root, sub, `${digestHex(d)}.json`), "[]");
    }
    await writeFile(join(root, "ingest", `${dead}.0123456789abcdef.ingest`), "half a blob");
    await writeFile(join(root, "tmp", `${dead}.0123456789abcdef.x.json`), "half a file");

    const result = await collectGarbage(store);

    const kept = new Set<string>();
    for await (const b of store.list()) kept.add(b.digest);
    for (const d of [l1, l2, l3, app.manifest.digest, app.config, inner.manifest.digest, inner.config, idx.digest, l4, files.digest, l5]) expect(kept.has(d), d).toBe(true);
    for (const d of [g1, g2, g3]) expect(kept.has(d), d).toBe(false);
    expect(new Set(result.removedBlobs)).toEqual(new Set([g1, g2, g3]));
    expect(result.freedBytes).toBe(7000);
    expect(result.removedLeases).toBe(1);
    expect(await exists(deadLease)).toBe(false);
    for (const d of keepDirs) expect(await exists(d), d).toBe(true);
    expect(await exists(dropDir)).toBe(false);
    expect(await exists(halfDir)).toBe(false);
    expect(result.removedLayerDirs).toBe(2);
    expect((await readdir(join(root, "layers"))).sort()).toEqual([digestHex(d1), digestHex(d4)].sort());
    for (const sub of ["layer-listing", "layer-sizes"]) expect((await readdir(join(root, sub))).sort()).toEqual([`${digestHex(d1)}.json`, `${digestHex(d3)}.json`].sort());
    expect(await readdir(join(root, "ingest"))).toEqual([]);
    expect(await readdir(join(root, "tmp"))).toEqual([]);

    // Once released, the lease protects nothing.
    await lease.release();
    const again = await collectGarbage(store);
    expect(again.removedBlobs).toEqual([l5]);
  });

  it("keeps blobs written after a live lease began even before they are added to it", async () => {
    const lease = await Lease.acquire(store);
    const fresh = (await store.writeBytes("written by a build, not leased yet")).digest;
    const old = await blob();
    const result = await collectGarbage(store);
    expect(result.removedBlobs).toEqual([old]);
    expect(await store.has(fresh)).toBe(true);
    await lease.release();
    expect((await collectGarbage(store)).removedBlobs).toEqual([fresh]);
  });

  it("drops lazy-blob sources no record needs", async () => {
    const remote = await RemoteBlobIndex.open(store);
    const needed = computeDigest("remote-needed");
    const unneeded = computeDigest("remote-unneeded");
    await remote.put(needed, { kind: "local", location: "/nowhere", size: 10, mediaType: "application/octet-stream" });
    await remote.put(unneeded, { kind: "local", location: "/nowhere", size: 10, mediaType: "application/octet-stream" });
    await record([needed]);
    const result = await collectGarbage(store);
    expect(result.removedRemoteSources).toBe(1);
    expect(await remote.get(needed)).toBeDefined();
    expect(await remote.get(unneeded)).toBeUndefined();
    // A lazy blob is not a missing blob.
    const check = await checkStore(store);
    expect(check).toMatchObject({ ok: true, lazyBlobs: 1 });
  });
});

describe("pruneCache", () => {
  async function storeBytes(): Promise<number> {
    let total = 0;
    for await (const b of store.list()) total += b.size;
    return total;
  }

  it("--keep-storage drops least recently used records until the store fits; shared blobs count once", async () => {
    const keys: Digest[] = [];
    const shared = await blob(10_000);
    for (let i = 0; i < 6; i++) {
      const own = await blob(10_000);
      keys.push(await record(i >= 4 ? [own, shared] : [own]));
      await ageRecord(root, keys[i]!, (10 - i) * HOUR); // keys[0] is the least recently used
    }
    const usage = await cacheUsage(store);
    expect(usage.totalSize).toBe(70_000); // six own blobs + the shared one once
    expect(usage.records.filter((r) => r.shared).map((r) => r.key).sort()).toEqual([keys[4], keys[5]].sort());
    expect(usage.records[0]!.key).toBe(keys[5]); // most recent first

    const result = await pruneCache(store, pruneOptionsFromFlags({ keepStorage: "35kB" }));
    expect(result.removedRecords.map((r) => r.key)).toEqual([keys[0], keys[1], keys[2], keys[3]]);
    expect(result.keptBytes).toBe(30_000);
    expect(await storeBytes()).toBeLessThanOrEqual(35_000);
    for (const k of [keys[4]!, keys[5]!]) expect(await index.get(k)).toBeDefined();
    expect(await checkStore(store)).toMatchObject({ ok: true });
  });

  it("--filter until removes only records unused for longer; --all removes every record but tagged blobs stay", async () => {
    const oldKey = await record([await blob()]);
    await ageRecord(root, oldKey, 2 * HOUR);
    const newKey = await record([await blob()]);
    const tagged = await blob();
    const img = await image([tagged], [computeDigest("t")]);
    await tags.set("example.com/keep:1", { mediaType: "application/vnd.oci.image.manifest.v1+json", ...img.manifest });

    const out = await cachePruneCommand(store, { filters: ["until=1h"] });
    expect(out).toContain("Deleted records: 1");
    expect(await index.get(oldKey)).toBeUndefined();
    expect(await index.get(newKey)).toBeDefined();

    const all = await pruneCache(store, { all: true });
    expect(all.removedRecords.map((r) => r.key)).toEqual([newKey]);
    const left = new Set<string>();
    for await (const b of store.list()) left.add(b.digest);
    expect(left).toEqual(new Set([tagged, img.manifest.digest, img.config]));
  });

  it("without flags removes only broken records", async () => {
    const ok = await record([await blob()]);
    const broken = await record([computeDigest("never stored")]);
    const result = await pruneCache(store);
    expect(result.removedRecords.map((r) => r.key)).toEqual([broken]);
    expect(await index.get(ok)).toBeDefined();
  });
});

describe("check and du", () => {
  it("reports corrupt blobs, records with missing blobs and tags without manifests, and exits non-zero", async () => {
    const good = await blob();
    await record([good]);
    expect(await cacheCheckCommand(store)).toMatchObject({ exitCode: 0 });

    const bad = await blob();
    await chmod(store.path(bad), 0o644);
    await writeFile(store.path(bad), "tampered");
    const missing = computeDigest("gone");
    const rec = await record([missing]);
    await tags.set("example.com/ghost:1", { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: computeDigest("no manifest"), size: 2 });
    await mkdir(join(root, "index", "records", "ab"), { recursive: true });
    await writeFile(join(root, "index", "records", "ab", `ab${"0".repeat(62)}.json`), "{not json");

    const result = await checkStore(store);
    expect(result.ok).toBe(false);
    expect(result.issues).toEqual(
      expect.arrayContaining([
        { kind: "corrupt-blob", digest: bad, detail: expect.any(String) },
        { kind: "missing-blob", digest: missing, record: rec },
        { kind: "missing-blob", digest: computeDigest("no manifest"), tag: "example.com/ghost:1" },
        { kind: "corrupt-record", path: expect.stringContaining(`ab${"0".repeat(62)}.json`) },
      ]),
    );
    expect(result.issues).toHaveLength(4);
    const cmd = await cacheCheckCommand(store);
    expect(cmd.exitCode).toBe(1);
    expect(cmd.output).toContain(`corrupt blob ${bad}`);
    expect(cmd.output).toContain(`missing blob ${missing} (cache record ${rec})`);

    // --repair deletes what is broken; only the tag (reported, never deleted) remains.
    const repaired = await cacheCheckCommand(store, { repair: true });
    expect(repaired.exitCode).toBe(1);
    expect(await store.has(bad)).toBe(false);
    expect(await index.get(rec)).toBeUndefined();
    expect((await checkStore(store)).issues).toEqual([{ kind: "missing-blob", digest: computeDigest("no manifest"), tag: "example.com/ghost:1" }]);
  });

  it("du lists records with instruction, size and last use, and totals", async () => {
    await record([await blob(2000)], { instruction: "COPY app /app" });
    await record([await blob(3000)], { instruction: "RUN make" });
    const out = await cacheDuCommand(store);
    expect(out).toMatch(/KEY\s+SIZE\s+LAST USED\s+INSTRUCTION/);
    expect(out).toMatch(/2\.00kB\s+\S+\s+COPY app \/app/);
    expect(out).toMatch(/3\.00kB\s+\S+\s+RUN make/);
    expect(out).toContain("Records: 2");
    expect(out).toContain("Total (cache records, shared blobs once): 5.00kB");
  });
});

describe("units", () => {
  it("parses durations and sizes", () => {
    expect(parseDuration("24h")).toBe(24 * HOUR);
    expect(parseDuration("7d")).toBe(7 * 24 * HOUR);
    expect(parseDuration("30m")).toBe(30 * 60_000);
    expect(parseDuration("1h30m")).toBe(90 * 60_000);
    expect(parseSize("10GB")).toBe(10e9);
    expect(parseSize("512MiB")).toBe(512 * 1024 * 1024);
    expect(parseSize("1.5k")).toBe(1500);
    expect(parseSize("4096")).toBe(4096);
    expect(formatSize(1234)).toBe("1.23kB");
    for (const bad of ["", "h", "10 parsecs", "-1h", "1y"]) expect(() => parseDuration(bad), bad).toThrow(InvalidUnitError);
    for (const bad of ["", "GB", "10XB", "-5MB"]) expect(() => parseSize(bad), bad).toThrow(InvalidUnitError);
    expect(() => pruneOptionsFromFlags({ filters: ["label=x"] })).toThrow(InvalidUnitError);
  });
});
