// A real build whose store layers are uncompressed: every output and the push get gzip layers (or tar
// layers with compression=uncompressed), and a one-file rebuild deflates only what changed.
import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType, RegistryClient, type BuildResult, type Digest, type ImageIndex, type Manifest } from "@kiln/core";
import { makeFixture, type Fixture } from "./support/build-fixture.js";
import { ensureRegistry, requireTool } from "../../../test/support/services.js";
import { docker } from "../../../test/support/docker.js";
import { uniqueRepo } from "./registry-fixtures.js";

const run = promisify(execFile);

async function readLayout(dir: string): Promise<Manifest & { digest: Digest }> {
  const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8")) as ImageIndex;
  const digest = index.manifests[0]!.digest;
  return { ...(JSON.parse(await readFile(path.join(dir, "blobs", "sha256", digest.slice(7)), "utf8")) as Manifest), digest };
}

async function gunzipDigestOfFile(file: string): Promise<Digest> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), createGunzip(), hash);
  return `sha256:${hash.digest("hex")}`;
}

async function fileDigest(file: string): Promise<Digest> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return `sha256:${hash.digest("hex")}`;
}

/** The manifest the store's tags point to (layers as stored). */
async function stored(f: Fixture, r: BuildResult): Promise<Manifest> {
  return f.store.blobs.readJson<Manifest>(r.storedManifestDigest);
}

async function countRecords(f: Fixture): Promise<number> {
  return (await readdir(f.store.blobs.dir("compressed")).catch(() => [])).length;
}

let f: Fixture;
let result: BuildResult;
let ref: string;

beforeAll(async () => {
  const { host } = await ensureRegistry();
  ref = `${host}/${uniqueRepo("compress-build")}:v1`;
  f = await makeFixture({ Dockerfile: "FROM scratch\nCOPY . /app/\n" });
  for (let i = 0; i < 600; i++) await f.write(`src/m${i % 20}/file${i}.js`, `export const v${i} = ${JSON.stringify("x".repeat(i * 7))};\n`);
  for (let i = 0; i < 3; i++) await f.write(`assets/blob${i}.bin`, randomBytes(1_200_000 + i));
  ({ result } = await f.build({
    sourceDateEpoch: 1_700_000_000,
    tags: [ref],
    outputs: [
      { type: "oci", dest: path.join(f.dir, "layout") },
      { type: "oci", dest: path.join(f.dir, "layout-tar"), compression: "uncompressed" },
      { type: "docker", dest: path.join(f.dir, "docker.tar") },
      { type: "registry" },
    ],
    registryClient: new RegistryClient({ credentials: async () => undefined }),
  }));
});

afterAll(async () => {
  if (ref) await docker(["image", "rm", "-f", ref]).catch(() => undefined);
  await f?.cleanup();
});

describe("build outputs from an uncompressed store", () => {
  it("keeps the store's layer uncompressed and a composite, and reports the exported manifest", async () => {
    expect((await f.store.tags.get(ref))?.digest).toBe(result.storedManifestDigest);
    const layer = (await stored(f, result)).layers[0]!;
    expect(layer.mediaType).toBe(MediaType.ociLayer);
    expect(layer.digest).toBe(result.image.config.rootfs.diff_ids[0]);
    expect(result.image.manifest.layers[0]!.mediaType).toBe(MediaType.ociLayerGzip);
    expect(await f.store.blobs.readComposite(layer.digest)).toBeDefined();
  });

  it("writes gzip layers to the OCI layout by default", async () => {
    const dir = path.join(f.dir, "layout");
    const m = await readLayout(dir);
    expect(m.config.digest).toBe(result.imageId);
    expect(m.digest).toBe(result.manifestDigest);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.ociLayerGzip]);
    const file = path.join(dir, "blobs", "sha256", m.layers[0]!.digest.slice(7));
    expect(await fileDigest(file)).toBe(m.layers[0]!.digest);
    expect(await gunzipDigestOfFile(file)).toBe(result.image.config.rootfs.diff_ids[0]);
    const inspect = JSON.parse((await run(requireTool("skopeo"), ["inspect", `oci:${dir}`])).stdout) as { Layers: string[] };
    expect(inspect.Layers).toEqual([m.layers[0]!.digest]);
  });

  it("keeps tar layers with compression=uncompressed", async () => {
    const m = await readLayout(path.join(f.dir, "layout-tar"));
    expect(m.digest).toBe(result.storedManifestDigest);
    expect(m.layers).toEqual((await stored(f, result)).layers);
  });

  it("docker load of the archive gives the build's image ID", async () => {
    await docker(["load", "-i", path.join(f.dir, "docker.tar")]);
    expect((await docker(["image", "inspect", "--format", "{{.Id}}", ref])).trim()).toBe(result.imageId);
  });

  it("pushes the same gzip manifest as the OCI output", async () => {
    const m = await readLayout(path.join(f.dir, "layout"));
    expect(result.pushed).toHaveLength(1);
    expect(result.pushed[0]!.digest).toBe(m.digest);
    const raw = JSON.parse((await run(requireTool("skopeo"), ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout) as Manifest;
    expect(raw.layers).toEqual(m.layers);
  });

  it("after a one-file change deflates only the new part (plus the layer record)", async () => {
    const before = await countRecords(f);
    const oldParts = new Set((await f.store.blobs.readComposite((await stored(f, result)).layers[0]!.digest))!.parts.map((p) => p.digest));
    await f.write("src/m3/file3.js", "export const changed = true;\n");
    const { result: second } = await f.build({ sourceDateEpoch: 1_700_000_000, outputs: [{ type: "oci", dest: path.join(f.dir, "layout2") }] });
    const parts = (await f.store.blobs.readComposite((await stored(f, second)).layers[0]!.digest))!.parts;
    const newParts = parts.filter((p) => !oldParts.has(p.digest));
    expect(newParts.length).toBeGreaterThan(0);
    expect(newParts.length).toBeLessThan(parts.length);
    // One conversion record per newly deflated part, and one for the layer.
    expect((await countRecords(f)) - before).toBe(newParts.length + 1);
    const m = await readLayout(path.join(f.dir, "layout2"));
    expect(await gunzipDigestOfFile(path.join(f.dir, "layout2", "blobs", "sha256", m.layers[0]!.digest.slice(7)))).toBe(second.image.config.rootfs.diff_ids[0]);
  });
});
