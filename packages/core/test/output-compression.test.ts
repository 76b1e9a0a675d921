// Lazy layer compression: images whose store layers are uncompressed tars (regular and composite blobs)
// get gzip layers for outputs and pushes, checked with real readers (gunzip, skopeo, umoci, dockerd, registry).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore, computeDigest, type CompositePart, type Digest } from "@kiln/cache";
import { writeLayerBlob, type LayerEntry } from "@kiln/snapshot";
import {
  MediaType,
  RegistryClient,
  compressImageLayers,
  emptyCompressionStats,
  writeDockerArchive,
  writeOciLayoutDir,
  writeOciLayoutTar,
  pushImage,
  type ImageArtifact,
  type ImageConfig,
  type Manifest,
} from "@kiln/core";
import { ensureRegistry, requireTool } from "../../../test/support/services.js";
import { docker } from "../../../test/support/docker.js";
import { uniqueRepo } from "./registry-fixtures.js";

const run = promisify(execFile);
const MiB = 1 << 20;

/** Deterministic bytes of `size`, varying with `seed` (compressible like real files, not all zeros). */
function content(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash("sha256").update(seed).digest();
  for (let off = 0; off < size; off += 64) {
    block = createHash("sha256").update(block).digest();
    out.write(`${block.toString("hex").slice(0, 48)} line ${off}\n`.padEnd(64, "-").slice(0, 64), off, "latin1");
  }
  return out;
}

function fileEntry(p: string, data: Buffer): LayerEntry {
  return { path: p, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: data.length, open: () => PassThrough.from([data]) as unknown as NodeJS.ReadableStream };
}

/** The uncompressed tar of `entries`, as bytes (test layers are a few MiB). */
async function tarBytes(entries: LayerEntry[]): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  await writeLayerBlob(entries, sink, { compression: "none" });
  return Buffer.concat(chunks);
}

/** A regular uncompressed layer blob. */
async function regularLayer(store: BlobStore, entries: LayerEntry[]): Promise<{ digest: Digest; size: number }> {
  const bytes = await tarBytes(entries);
  return store.writeBytes(bytes);
}

/** A composite uncompressed layer: the tar cut into fixed-size parts, each a regular blob. */
async function compositeLayer(store: BlobStore, entries: LayerEntry[], partBytes: number): Promise<{ digest: Digest; size: number; parts: CompositePart[] }> {
  const bytes = await tarBytes(entries);
  const parts: CompositePart[] = [];
  for (let off = 0; off < bytes.length; off += partBytes) parts.push(await store.writeBytes(bytes.subarray(off, off + partBytes)));
  const digest = computeDigest(bytes);
  await store.writeComposite(digest, parts, { verify: true });
  return { digest, size: bytes.length, parts };
}

const appFiles = (changed = "v1"): LayerEntry[] => [
  fileEntry("app/a.txt", content(700 * 1024, "a")),
  fileEntry("app/b.bin", content(900 * 1024, `b-${changed}`)), // same size in every version: only its parts change
  fileEntry("app/c.txt", content(800 * 1024, "c")),
  fileEntry("app/hello.txt", Buffer.from("hello from the composite layer\n")),
];
const baseFiles = (): LayerEntry[] => [fileEntry("etc/base.txt", Buffer.from("base layer\n")), fileEntry("big/blob.dat", content(3 * MiB + 123, "big"))];

/** An image of two uncompressed layers (one regular, one composite of 512 KiB parts), stored in `store`. */
async function makeImage(store: BlobStore, version = "v1"): Promise<ImageArtifact & { compositeParts: CompositePart[] }> {
  const base = await regularLayer(store, baseFiles());
  const app = await compositeLayer(store, appFiles(version), 512 * 1024);
  const config: ImageConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: [base.digest, app.digest] },
    history: [{ created_by: "base" }, { created_by: "COPY app /app" }],
  } as ImageConfig;
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc = await store.writeBytes(configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDesc.digest, size: configDesc.size },
    layers: [
      { mediaType: MediaType.ociLayer, digest: base.digest, size: base.size },
      { mediaType: MediaType.ociLayer, digest: app.digest, size: app.size, annotations: { "org.example.part": "app" } },
    ],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const md = await store.writeBytes(manifestBytes);
  return {
    manifestDescriptor: { mediaType: MediaType.ociManifest, digest: md.digest, size: md.size },
    manifest,
    manifestBytes,
    config,
    configBytes,
    compositeParts: app.parts,
  };
}

async function gunzipDigest(stream: NodeJS.ReadableStream): Promise<Digest> {
  const hash = createHash("sha256");
  await pipeline(stream, createGunzip(), hash);
  return `sha256:${hash.digest("hex")}`;
}

let tmp: string;
let store: BlobStore;
let image: ImageArtifact & { compositeParts: CompositePart[] };
let gz: ImageArtifact;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "kiln-compress-"));
  store = await BlobStore.open(path.join(tmp, "store"));
  image = await makeImage(store);
  gz = await compressImageLayers(image, store, { workers: 2 });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("compressImageLayers", () => {
  it("replaces uncompressed layers by gzip ones whose gunzip'd digests are the config's diff_ids", async () => {
    expect(gz.manifest.config).toEqual(image.manifest.config);
    expect(gz.manifestDescriptor.digest).not.toBe(image.manifestDescriptor.digest);
    expect(computeDigest(await store.readBytes(gz.manifestDescriptor.digest))).toBe(gz.manifestDescriptor.digest);
    expect(gz.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.ociLayerGzip, MediaType.ociLayerGzip]);
    expect(gz.manifest.layers[1]!.annotations).toEqual({ "org.example.part": "app" });
    for (const [i, layer] of gz.manifest.layers.entries()) {
      expect((await store.stat(layer.digest))?.size).toBe(layer.size);
      expect(await store.verify(layer.digest)).toBe(true);
      expect(await gunzipDigest(store.createReadStream(layer.digest))).toBe(image.config.rootfs.diff_ids[i]);
      expect(layer.size).toBeLessThan(image.manifest.layers[i]!.size);
    }
    // The composite layer's gzip form is a composite of one gzip blob per part.
    const gzComposite = await store.readComposite(gz.manifest.layers[1]!.digest);
    expect(gzComposite?.parts).toHaveLength(image.compositeParts.length);
    // The regular layer (> 3 MiB) was deflated as several members, read back as one stream above.
    expect(await store.readComposite(gz.manifest.layers[0]!.digest)).toBeUndefined();
  });

  it("returns the image itself when nothing needs converting", async () => {
    expect(await compressImageLayers(image, store, { compression: "uncompressed" })).toBe(image);
    expect(await compressImageLayers(gz, store)).toBe(gz);
  });

  it("gives identical digests in another store, and reuses its conversions the second time", async () => {
    const other = await BlobStore.open(path.join(tmp, "other-store"));
    const again = await makeImage(other);
    const stats = emptyCompressionStats();
    const gz2 = await compressImageLayers(again, other, { workers: 1, stats });
    expect(gz2.manifestDescriptor.digest).toBe(gz.manifestDescriptor.digest);
    expect(stats.blobsDeflated).toBe(1 + again.compositeParts.length);

    const warm = emptyCompressionStats();
    const gz3 = await compressImageLayers(again, other, { stats: warm });
    expect(gz3.manifestDescriptor.digest).toBe(gz.manifestDescriptor.digest);
    expect(warm).toMatchObject({ layers: 2, layersReused: 2, blobsDeflated: 0, membersDeflated: 0 });
  });

  it("deflates only the changed part after a one-file change", async () => {
    const changed = await makeImage(store, "v2");
    const changedParts = changed.compositeParts.filter((p) => !image.compositeParts.some((q) => q.digest === p.digest));
    expect(changedParts.length).toBeGreaterThan(0);
    expect(changedParts.length).toBeLessThan(changed.compositeParts.length);
    const stats = emptyCompressionStats();
    const out = await compressImageLayers(changed, store, { stats });
    expect(stats.layersReused).toBe(1); // the unchanged regular layer
    expect(stats.blobsDeflated).toBe(changedParts.length);
    expect(stats.partsReused).toBe(changed.compositeParts.length - changedParts.length);
    expect(out.manifest.layers[0]!.digest).toBe(gz.manifest.layers[0]!.digest);
    expect(await gunzipDigest(store.createReadStream(out.manifest.layers[1]!.digest))).toBe(changed.config.rootfs.diff_ids[1]);
  });

  it("for a push, leaves a layer known only remotely as it is unless its gzip form is known", async () => {
    const other = await BlobStore.open(path.join(tmp, "remote-store"));
    const img = await makeImage(other);
    const remote = img.manifest.layers[0]!.digest;
    await other.delete(remote); // as if only an imported cache had it
    const isAvailable = async (d: Digest): Promise<boolean> => d === remote || (await other.has(d));
    const ensureBlob = async (d: Digest): Promise<void> => {
      throw new Error(`unexpected download of ${d}`);
    };
    const out = await compressImageLayers(img, other, { keepRemoteLayers: true, isAvailable, ensureBlob });
    expect(out.manifest.layers[0]).toEqual(img.manifest.layers[0]);
    expect(out.manifest.layers[1]!.digest).toBe(gz.manifest.layers[1]!.digest);
    // A file output needs the bytes anyway, so it asks for them.
    await expect(compressImageLayers(img, other, { isAvailable, ensureBlob })).rejects.toThrow(/unexpected download/);
  });

  it("uses docker media types for a docker schema 2 manifest", async () => {
    const manifest: Manifest = {
      ...image.manifest,
      mediaType: MediaType.dockerManifest,
      config: { ...image.manifest.config, mediaType: MediaType.dockerConfig },
      layers: image.manifest.layers.map((l) => ({ ...l, mediaType: "application/vnd.docker.image.rootfs.diff.tar" })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const md = await store.writeBytes(manifestBytes);
    const dockerImage: ImageArtifact = { ...image, manifest, manifestBytes, manifestDescriptor: { mediaType: MediaType.dockerManifest, digest: md.digest, size: md.size } };
    const out = await compressImageLayers(dockerImage, store);
    expect(out.manifest.layers.map((l) => [l.mediaType, l.digest])).toEqual(gz.manifest.layers.map((l) => [MediaType.dockerLayerGzip, l.digest]));
    expect(out.manifestDescriptor.mediaType).toBe(MediaType.dockerManifest);
  });

  it("stops when its signal is aborted, leaving no temp files", async () => {
    const other = await BlobStore.open(path.join(tmp, "abort-store"));
    const img = await makeImage(other);
    const ac = new AbortController();
    const seen: number[] = [];
    const p = compressImageLayers(img, other, { signal: ac.signal, onProgress: (e) => (seen.push(e.index), ac.abort()) });
    await expect(p).rejects.toThrow(/abort/i);
    expect(seen).toEqual([0]); // the composite layer was never started
    expect(await readdir(path.join(other.root, "ingest"))).toEqual([]);
  });
});

describe("outputs of a compressed image", () => {
  it("writes an OCI layout that skopeo inspects and umoci unpacks", async () => {
    const dir = path.join(tmp, "layout");
    await writeOciLayoutDir(gz, store, dir, { names: ["localhost/kiln-compress:v1"] });
    const blobs = await readdir(path.join(dir, "blobs", "sha256"));
    expect(blobs.sort()).toEqual([gz.manifestDescriptor.digest, gz.manifest.config.digest, ...gz.manifest.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort());
    for (const [i, l] of gz.manifest.layers.entries()) {
      const bytes = await readFile(path.join(dir, "blobs", "sha256", l.digest.slice(7)));
      expect(computeDigest(bytes)).toBe(l.digest);
      expect(bytes.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(await gunzipDigest(PassThrough.from([bytes]) as unknown as NodeJS.ReadableStream)).toBe(gz.config.rootfs.diff_ids[i]);
    }
    const inspect = JSON.parse((await run(requireTool("skopeo"), ["inspect", `oci:${dir}:v1`])).stdout) as { Layers: string[] };
    expect(inspect.Layers).toEqual(gz.manifest.layers.map((l) => l.digest));

    const bundle = path.join(tmp, "bundle");
    await run(requireTool("umoci"), ["unpack", "--rootless", "--image", `${dir}:v1`, bundle]);
    expect(await readFile(path.join(bundle, "rootfs", "app", "hello.txt"), "utf8")).toBe("hello from the composite layer\n");
    expect((await readFile(path.join(bundle, "rootfs", "big", "blob.dat"))).equals(content(3 * MiB + 123, "big"))).toBe(true);
  });

  it("writes an OCI layout tar that skopeo reads", async () => {
    const file = path.join(tmp, "layout.tar");
    await writeOciLayoutTar(gz, store, file, { names: ["localhost/kiln-compress:v1"] });
    const inspect = JSON.parse((await run(requireTool("skopeo"), ["inspect", `oci-archive:${file}:v1`])).stdout) as { Layers: string[] };
    expect(inspect.Layers).toEqual(gz.manifest.layers.map((l) => l.digest));
  });

  it("writes a docker archive that docker load accepts with the same image ID", async () => {
    const name = `kiln-compress-test:${process.pid}`;
    const file = path.join(tmp, "docker.tar");
    await writeDockerArchive(gz, store, file, { names: [name] });
    await docker(["load", "-i", file]);
    try {
      const id = (await docker(["image", "inspect", "--format", "{{.Id}}", name])).trim();
      expect(id).toBe(gz.manifest.config.digest);
      expect(id).toBe(image.manifest.config.digest);
    } finally {
      await docker(["image", "rm", "-f", name]).catch(() => undefined);
    }
  });

  it("pushes gzip layers to a registry, and skopeo copies them back", async () => {
    const { host } = await ensureRegistry();
    const ref = `${host}/${uniqueRepo("compress")}:v1`;
    const pushed = await pushImage(gz, store, ref, { client: new RegistryClient({ credentials: async () => undefined }) });
    expect(pushed.digest).toBe(gz.manifestDescriptor.digest);
    const back = path.join(tmp, "pulled");
    await run(requireTool("skopeo"), ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${back}:v1`]);
    const index = JSON.parse(await readFile(path.join(back, "index.json"), "utf8")) as { manifests: { digest: Digest }[] };
    expect(index.manifests[0]!.digest).toBe(gz.manifestDescriptor.digest);
    for (const [i, l] of gz.manifest.layers.entries()) {
      const bytes = await readFile(path.join(back, "blobs", "sha256", l.digest.slice(7)));
      expect(await gunzipDigest(PassThrough.from([bytes]) as unknown as NodeJS.ReadableStream)).toBe(gz.config.rootfs.diff_ids[i]);
    }
  });
});
