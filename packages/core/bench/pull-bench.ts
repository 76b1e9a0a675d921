/**
 * Pull benchmark: a generated ~170 MB image (4 gzip layers of incompressible data, made once and pushed
 * to the test registry on 127.0.0.1:5000) pulled with kiln into an empty BlobStore, and with
 * `skopeo copy docker://… dir:…`; with --docker also `docker pull` against the test dockerd.
 * Each tool runs `runs` times from a cold local cache; prints every time and the median.
 * Run: npx tsx packages/core/bench/pull-bench.ts [runs] [--docker]
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import { pack } from "tar-stream";
import { BlobStore } from "@kiln/cache";
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from "../src/image/oci.js";
import { RegistryClient, RegistryError, pullImage, pushImage, resolveImage } from "../src/registry/index.js";
import { ensureDockerd, ensureRegistry, requireTool, runningServices, stopServices } from "../../../test/support/services.js";

const run = promisify(execFile);
const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 3);
const withDocker = process.argv.includes("--docker");
const LAYERS = 4;
const LAYER_BYTES = 42 * 1024 * 1024;

class Hasher extends Transform {
  readonly hash = createHash("sha256");
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

/** One gzip layer holding a single file of random bytes, streamed into the store. */
async function makeLayer(store: BlobStore, i: number): Promise<{ desc: Descriptor; diffId: Digest }> {
  const tar = pack();
  const entry = tar.entry({ name: `data/blob-${i}.bin`, size: LAYER_BYTES, mode: 0o644, mtime: new Date(0) });
  void (async () => {
    for (let sent = 0; sent < LAYER_BYTES; sent += 1 << 20) {
      if (!entry.write(randomBytes(Math.min(1 << 20, LAYER_BYTES - sent)))) await new Promise<void>((r) => entry.once("drain", () => r()));
    }
    entry.end(Buffer.alloc(0));
    tar.finalize();
  })();
  const tarHash = new Hasher();
  const gzHash = new Hasher();
  const sink = new PassThrough();
  const writing = store.writeStream(sink);
  await pipeline(tar, tarHash, createGzip({ level: 1 }), gzHash, sink);
  const { digest, size } = await writing;
  if (digest !== gzHash.digest()) throw new Error("layer digest mismatch");
  return { desc: { mediaType: MediaType.ociLayerGzip, digest, size }, diffId: tarHash.digest() };
}

async function ensureBenchImage(ref: string, client: RegistryClient, scratch: string): Promise<void> {
  try {
    await resolveImage(ref, { client });
    return;
  } catch (err) {
    if (!(err instanceof RegistryError && err.status === 404)) throw err;
  }
  console.log(`generating ${ref} (${LAYERS} × ${LAYER_BYTES >> 20} MiB)…`);
  const store = await BlobStore.open(path.join(scratch, "gen-store"));
  const layers = [];
  for (let i = 0; i < LAYERS; i++) layers.push(await makeLayer(store, i));
  const config: ImageConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc = { mediaType: MediaType.ociConfig, ...(await store.writeBytes(configBytes)) };
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: layers.map((l) => l.desc) };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDescriptor = { mediaType: MediaType.ociManifest, ...(await store.writeBytes(manifestBytes)) };
  await pushImage({ manifest, manifestBytes, manifestDescriptor, config, configBytes }, store, ref, { client });
}

async function time(label: string, fn: () => Promise<void>, reset: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    await reset();
    // Flush the previous run's writes so neither tool pays for the other's writeback.
    await run("sync", []);
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`${label.padEnd(14)} ${times.map((t) => t.toFixed(2) + "s").join("  ")}   median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(2)}s`);
  return times;
}

async function main(): Promise<void> {
  // Services this script starts are stopped at the end; ones already running are left alone.
  const before = await runningServices();
  const registryWasUp = before.registry !== undefined || (await fetch("http://127.0.0.1:5000/v2/").then(() => true, () => false));
  const { host } = await ensureRegistry();
  const ref = `${host}/kiln-bench/big:v1`;
  const client = new RegistryClient({ credentials: async () => undefined });
  const scratch = await mkdtemp(path.join(tmpdir(), "kiln-pull-bench-"));
  try {
    await ensureBenchImage(ref, client, scratch);
    const resolved = await resolveImage(ref, { client });
    const total = resolved.manifest.layers.reduce((n, l) => n + l.size, resolved.config.size);
    console.log(`image ${ref} ${resolved.manifestDigest.slice(0, 19)}… ${(total / 1e6).toFixed(1)} MB in ${resolved.manifest.layers.length} layers; ${runs} runs each, cold`);

    const storeDir = path.join(scratch, "kiln-store");
    await time(
      "kiln pull",
      async () => {
        await pullImage(ref, await BlobStore.open(storeDir), { client });
      },
      () => rm(storeDir, { recursive: true, force: true }),
    );

    const skopeo = requireTool("skopeo");
    const dirDest = path.join(scratch, "skopeo-dir");
    await time(
      "skopeo copy",
      async () => {
        await run(skopeo, ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `dir:${dirDest}`]);
      },
      () => rm(dirDest, { recursive: true, force: true }),
    );

    if (withDocker) {
      const { dockerHost } = await ensureDockerd();
      const docker = requireTool("docker");
      const env = { ...process.env, DOCKER_HOST: dockerHost };
      try {
        await time(
          "docker pull",
          async () => {
            await run(docker, ["pull", "--quiet", ref], { env });
          },
          async () => {
            await run(docker, ["rmi", "-f", ref], { env }).catch(() => undefined);
          },
        );
        console.log("(docker pull also decompresses and unpacks the layers into its storage driver)");
      } finally {
        await run(docker, ["rmi", "-f", ref], { env }).catch(() => undefined);
        if (before.dockerd === undefined) await stopServices(["dockerd"]);
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    if (!registryWasUp) await stopServices(["registry"]);
  }
}

await main();
