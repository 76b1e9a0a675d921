// The build cache across hosts: host A builds (COPY + RUN, two stages) and exports its cache to the real
// registry or a local directory; host B (another store) imports it as lazy records, hits every key, and
// downloads no layer until ensureBlob() asks — then pushes the image by mounting instead of downloading.
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LazyBlobFetcher,
  LazyBlobUnavailableError,
  RegistryClient,
  build,
  exportCache,
  importCache,
  nodeTransport,
  openStore,
  parseCacheFromSpec,
  parseCacheToSpec,
  pushImage,
  CacheNotFoundError,
  CacheSpecError,
  type BuildResult,
  type CacheExportKeys,
  type Digest,
  type HttpTransport,
  type KilnStore,
} from "@kiln/core";
import { checkStore, collectGarbage, computeDigest } from "@kiln/cache";
import { ensureRegistry } from "./support/services.js";
import { requireTool } from "./support/tools.js";

const DOCKERFILE = `FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo built-on-host-a > /built.txt

FROM scratch
COPY --from=tools /built.txt /built.txt
COPY app.txt /app.txt
`;

let work: string;
let hostA: KilnStore;
let built: BuildResult;
let keys: CacheExportKeys;
let registry: string;
const run = randomBytes(4).toString("hex");

/** Counts blob GETs that reach the registry, by digest. */
function countingClient(): { client: RegistryClient; blobGets: Digest[] } {
  const blobGets: Digest[] = [];
  const transport: HttpTransport = (req) => {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url.pathname);
    if (req.method === "GET" && m) blobGets.push(m[1] as Digest);
    return nodeTransport(req);
  };
  return { client: new RegistryClient({ transport }), blobGets };
}

async function newHost(name: string): Promise<KilnStore> {
  return openStore(path.join(work, name));
}

/** Record keys the export carries: every step but FROM (each host recreates its FROM records). */
function exportedKeys(stage?: string): Digest[] {
  return built.steps.filter((s) => s.index > 1 && (stage === undefined || s.stage === stage)).map((s) => s.cacheKey);
}

function layerDigests(stage?: string): Digest[] {
  // Unique: two steps may produce byte-identical layers (COPY --from of a file a RUN wrote).
  return [...new Set(built.steps.filter((s) => s.layer && (stage === undefined || s.stage === stage)).map((s) => s.layer!.digest))];
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-cache-transfer-"));
  registry = (await ensureRegistry()).host;
  const ctx = path.join(work, "ctx");
  await mkdir(ctx);
  await writeFile(path.join(ctx, "Dockerfile"), DOCKERFILE);
  await writeFile(path.join(ctx, "app.txt"), `app ${run}\n`);
  await copyFile(requireTool("busybox"), path.join(ctx, "busybox"));
  hostA = await newHost("host-a");
  built = await build({ context: ctx, store: hostA }).result;
  const finalStage = built.steps.at(-1)!.stage;
  keys = { final: built.steps.filter((s) => s.stage === finalStage).map((s) => s.cacheKey), all: built.steps.map((s) => s.cacheKey) };
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("cache export/import through a registry", () => {
  it("mode=max: host B hits every record, downloads no layer until ensureBlob, and pushes by mounting", async () => {
    const ref = `${registry}/kiln-test/cache-${run}:max`;
    const exported = await exportCache(hostA, parseCacheToSpec(`type=registry,ref=${ref},mode=max,compression=uncompressed`), { keys });
    expect(exported.records).toBe(5); // 3 steps of "tools" + 2 of the final stage
    expect(exported.uploaded).toEqual(expect.arrayContaining(layerDigests()));

    const hostB = await newHost("host-b");
    const { client, blobGets } = countingClient();
    const imported = await importCache(hostB, parseCacheFromSpec(ref), { client });
    expect(imported).toMatchObject({ imported: 5, present: 0, lazyBlobs: layerDigests().length });
    for (const key of exportedKeys()) {
      const [a, b] = await Promise.all([hostA.cache.get(key), hostB.cache.get(key)]);
      expect(b, key).toBeDefined();
      expect(b!.result).toEqual(a!.result);
      expect(b!.parent).toBe(a!.parent);
    }
    // Nothing but the cache config and the small COPY file lists came over the wire.
    const layers = layerDigests();
    for (const d of layers) expect(await hostB.blobs.has(d)).toBe(false);
    expect(blobGets.filter((d) => layers.includes(d))).toEqual([]);
    expect(await checkStore(hostB.blobs)).toMatchObject({ ok: true, lazyBlobs: layers.length });

    const fetcher = await LazyBlobFetcher.open(hostB.blobs, { client });
    expect(fetcher.fetchCount).toBe(0);
    for (const d of layers) expect(await fetcher.isAvailable(d)).toBe(true);
    const wanted = built.steps.find((s) => s.instruction.startsWith("RUN echo"))!.layer!.digest;
    await fetcher.ensureBlob(wanted);
    await fetcher.ensureBlob(wanted);
    expect(fetcher.fetched).toEqual([wanted]);
    expect(blobGets.filter((d) => layers.includes(d))).toEqual([wanted]);
    expect(await hostB.blobs.verify(wanted)).toBe(true);

    // Pushing the final image from host B to another repository mounts the lazy layers from the cache repo.
    const pushed = await pushImage(built.image, fetcher.pushSource(), `${registry}/kiln-test/app-${run}:v1`, { client, mountFrom: fetcher.mountHint });
    const finalLayers = built.image.manifest.layers.map((l) => l.digest);
    expect(pushed.mounted.sort()).toEqual([...finalLayers].sort());
    expect(fetcher.fetched).toEqual([wanted]);
    expect(blobGets.filter((d) => layers.includes(d))).toEqual([wanted]);

    // Importing again changes nothing; GC keeps the lazy sources the records need.
    expect(await importCache(hostB, parseCacheFromSpec(`type=registry,ref=${ref}`), { client })).toMatchObject({ imported: 0, present: 5 });
    await collectGarbage(hostB.blobs);
    expect(await checkStore(hostB.blobs)).toMatchObject({ ok: true, records: 5 });
    expect(await hostB.blobs.has(wanted)).toBe(true);
  });

  it("mode=min exports only the final stage's steps", async () => {
    const ref = `${registry}/kiln-test/cache-${run}:min`;
    const finalStage = built.steps.at(-1)!.stage;
    const exported = await exportCache(hostA, parseCacheToSpec(`type=registry,ref=${ref},compression=uncompressed`), { keys });
    expect(exported.records).toBe(2);
    const hostC = await newHost("host-c");
    const imported = await importCache(hostC, { type: "registry", ref });
    expect(imported.keys.sort()).toEqual(exportedKeys(finalStage).sort());
    for (const key of exportedKeys("tools")) expect(await hostC.cache.get(key)).toBeUndefined();
  });

  it("a missing cache reference is a CacheNotFoundError", async () => {
    const hostX = await newHost("host-x");
    await expect(importCache(hostX, parseCacheFromSpec(`${registry}/kiln-test/none-${run}:nope`))).rejects.toThrow(CacheNotFoundError);
  });
});

describe("cache export/import through a local directory", () => {
  it("round-trips records; blobs are copied from the directory only on demand, and lazy records re-export", async () => {
    const dir = path.join(work, "cache-dir");
    const exported = await exportCache(hostA, parseCacheToSpec(`type=local,dest=${dir},mode=max,compression=uncompressed`), { keys });
    expect(exported.records).toBe(5);
    const files = await readdir(path.join(dir, "blobs", "sha256"));
    for (const d of layerDigests()) expect(files).toContain(d.slice(7));

    const hostD = await newHost("host-d");
    const imported = await importCache(hostD, parseCacheFromSpec(`type=local,src=${dir}`));
    expect(imported.imported).toBe(5);
    for (const key of exportedKeys()) expect(await hostD.cache.get(key)).toBeDefined();
    for (const d of layerDigests()) expect(await hostD.blobs.has(d)).toBe(false);

    // Host D exports what it imported without having used it: the fetcher copies blobs as the export needs them.
    const fetcher = await LazyBlobFetcher.open(hostD.blobs);
    const dir2 = path.join(work, "cache-dir-2");
    const again = await exportCache(hostD, parseCacheToSpec(`type=local,dest=${dir2},mode=max,compression=uncompressed`), { keys, fetcher });
    expect(again.records).toBe(5);
    expect(fetcher.fetched.sort()).toEqual(layerDigests().sort());
    for (const d of layerDigests()) expect(await hostD.blobs.verify(d)).toBe(true);
    const hostE = await newHost("host-e");
    expect(await importCache(hostE, { type: "local", src: dir2 })).toMatchObject({ imported: 5 });
  });

  it("a lazy blob whose source is gone or altered fails to fetch and leaves nothing in the store", async () => {
    const dir = path.join(work, "cache-dir-broken");
    await exportCache(hostA, parseCacheToSpec(`type=local,dest=${dir},mode=max,compression=uncompressed`), { keys });
    const hostF = await newHost("host-f");
    await importCache(hostF, { type: "local", src: dir });
    const [gone, altered] = layerDigests();
    await rm(path.join(dir, "blobs", "sha256", gone!.slice(7)));
    await writeFile(path.join(dir, "blobs", "sha256", altered!.slice(7)), "not the layer");
    const fetcher = await LazyBlobFetcher.open(hostF.blobs);
    await expect(fetcher.ensureBlob(gone!)).rejects.toThrow(LazyBlobUnavailableError);
    await expect(fetcher.ensureBlob(altered!)).rejects.toThrow(LazyBlobUnavailableError);
    await expect(fetcher.ensureBlob(computeDigest("unknown"))).rejects.toThrow(LazyBlobUnavailableError);
    expect(await hostF.blobs.has(gone!)).toBe(false);
    expect(await hostF.blobs.has(altered!)).toBe(false);
    expect(await readdir(path.join(hostF.root, "ingest"))).toEqual([]);
    expect(fetcher.fetched).toEqual([]);
  });

  it("rejects malformed specs", () => {
    expect(() => parseCacheToSpec("type=s3,bucket=x")).toThrow(CacheSpecError);
    expect(() => parseCacheToSpec("type=local")).toThrow(CacheSpecError);
    expect(() => parseCacheToSpec("type=local,dest=/x,mode=all")).toThrow(CacheSpecError);
    expect(() => parseCacheFromSpec("type=local,dest=/x")).toThrow(CacheSpecError);
    expect(parseCacheToSpec("type=registry,ref=example.com/a/b:c,mode=max")).toEqual({ type: "registry", ref: "example.com/a/b:c", mode: "max" });
    expect(parseCacheFromSpec("example.com/a/b:c")).toEqual({ type: "registry", ref: "example.com/a/b:c" });
  });
});
