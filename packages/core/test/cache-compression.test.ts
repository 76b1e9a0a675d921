// --cache-to …,compression=gzip: uncompressed store layers travel as gzip blobs annotated with their
// uncompressed digest; an importing host resolves every record, makes an uncompressed layer from its gzip
// form only when it needs the bytes, and pushes gzip images by mounting the cache's blobs.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build, nodeTransport, openStore, parseCacheFromSpec, parseCacheToSpec, RegistryClient, MediaType, type BuildResult, type HttpTransport, type Manifest } from "@kiln/core";
import { RemoteBlobIndex } from "@kiln/cache";
import { ensureRegistry, requireTool } from "../../../test/support/services.js";

const run = randomBytes(4).toString("hex");
const dockerfile = (last: string) => `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY app.txt /app.txt
RUN ${last}
`;

function countingClient(): { client: RegistryClient; blobGets: string[] } {
  const blobGets: string[] = [];
  const transport: HttpTransport = (req) => {
    if (req.method === "GET" && /\/blobs\/sha256:/.test(req.url.pathname)) blobGets.push(req.url.pathname.split("/").at(-1)!);
    return nodeTransport(req);
  };
  return { client: new RegistryClient({ transport, credentials: async () => undefined }), blobGets };
}

const layerDigests = (r: BuildResult) => r.steps.flatMap((s) => (s.layer ? [s.layer.digest as string] : []));

let work: string;
let ctx: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-cache-gzip-"));
  ctx = path.join(work, "ctx");
  await mkdir(ctx);
  await writeFile(path.join(ctx, "app.txt"), `app ${run}\n`);
  await copyFile(requireTool("busybox"), path.join(ctx, "busybox"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("cache export with compression=gzip", () => {
  it("parses compression= on --cache-to", () => {
    expect(parseCacheToSpec("type=local,dest=/c,compression=gzip")).toEqual({ type: "local", dest: "/c", mode: "min", compression: "gzip" });
    expect(parseCacheToSpec("type=registry,ref=r.example/c:1,mode=max,compression=Uncompressed")).toEqual({ type: "registry", ref: "r.example/c:1", mode: "max", compression: "uncompressed" });
    expect(parseCacheToSpec("type=local,dest=/c")).toEqual({ type: "local", dest: "/c", mode: "min" });
    expect(() => parseCacheToSpec("type=local,dest=/c,compression=zstd")).toThrow(/compression must be/);
  });

  it("a local cache holds gzip layers (the default) that another host imports, unpacks and rebuilds on", async () => {
    const dir = path.join(work, "cache-dir");
    const a = await build({ context: ctx, dockerfileContent: dockerfile("echo one > /y"), store: await openStore(path.join(work, "a")), cacheTo: [parseCacheToSpec(`type=local,dest=${dir},mode=max`)] }).result;
    const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(path.join(dir, "blobs", "sha256", index.manifests[0]!.digest.slice(7)), "utf8")) as Manifest;
    const layers = manifest.layers.filter((l) => l.annotations?.["containerd.io/uncompressed"]);
    expect(new Set(layers.map((l) => l.annotations!["containerd.io/uncompressed"]))).toEqual(new Set(layerDigests(a)));
    for (const l of layers) expect(l.mediaType).toBe(MediaType.ociLayerGzip);

    const hostB = await openStore(path.join(work, "b"));
    const b = await build({ context: ctx, dockerfileContent: dockerfile("echo one > /y"), store: hostB, cacheFrom: [parseCacheFromSpec(`type=local,src=${dir}`)] }).result;
    expect(b.steps.every((s) => s.cached)).toBe(true);
    expect(b.imageId).toBe(a.imageId);
    // Nothing was needed yet: no uncompressed layer is in B's store.
    for (const d of layerDigests(a)) expect(await hostB.blobs.has(d as `sha256:${string}`)).toBe(false);

    // A changed last RUN needs the layers under it: they are made from the gzip blobs, and match A's —
    // even after a GC dropped the gzip blobs' own lazy entries (they are found beside the cache).
    const remote = await RemoteBlobIndex.open(hostB.blobs);
    for (const l of layers) expect(await remote.delete(l.digest)).toBe(true);
    const b2 = await build({ context: ctx, dockerfileContent: dockerfile("echo two > /y"), store: hostB, cacheFrom: [parseCacheFromSpec(`type=local,src=${dir}`)] }).result;
    expect(b2.steps.filter((s) => !s.cached).map((s) => s.instruction)).toEqual(["RUN echo two > /y"]);
    const below = layerDigests(a).slice(0, -1);
    for (const d of below) expect(await hostB.blobs.verify(d as `sha256:${string}`)).toBe(true);
  }, 300_000);

  it("a registry cache lets a third host push its gzip image by mounting, without downloads", async () => {
    const { host } = await ensureRegistry();
    const ref = `${host}/kiln-test/cache-gzip-${run}:buildcache`;
    const { client, blobGets } = countingClient();
    await build({ context: ctx, dockerfileContent: dockerfile("echo reg > /y"), store: await openStore(path.join(work, "ra")), registryClient: client, cacheTo: [parseCacheToSpec(`type=registry,ref=${ref},mode=max,compression=gzip`)] }).result;
    const gets = blobGets.length;
    const pushed = await build({
      context: ctx,
      dockerfileContent: dockerfile("echo reg > /y"),
      store: await openStore(path.join(work, "rc")),
      registryClient: client,
      cacheFrom: [parseCacheFromSpec(ref)],
      tags: [`${host}/kiln-test/cache-gzip-app-${run}:1`],
      outputs: [{ type: "registry" }],
    }).result;
    expect(pushed.steps.every((s) => s.cached)).toBe(true);
    expect(pushed.image.manifest.layers.every((l) => l.mediaType === MediaType.ociLayerGzip)).toBe(true);
    expect(pushed.pushed[0]!.uploaded).toBeLessThanOrEqual(1); // the config
    expect(pushed.pushed[0]!.mounted + pushed.pushed[0]!.skipped).toBeGreaterThanOrEqual(pushed.image.manifest.layers.length);
    // Only the cache manifest's config came over; no layer was downloaded.
    const layerGets = blobGets.slice(gets).filter((d) => pushed.image.manifest.layers.some((l) => l.digest === d));
    expect(layerGets).toEqual([]);
  }, 300_000);
});
