// Builds small real images by hand (tar-stream + zlib) for the registry tests.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import type { BlobStore } from "@kiln/cache";
import { MediaType, type Descriptor, type Digest, type ImageArtifact, type ImageConfig, type Manifest, type Platform } from "@kiln/core";

export const sha256 = (b: Uint8Array): Digest => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  for (const [name, content] of Object.entries(files)) {
    p.entry({ name, mode: 0o644, mtime: new Date(0) }, typeof content === "string" ? Buffer.from(content) : content);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface MadeImage extends ImageArtifact {
  layerBytes: Buffer[];
}

/** An image of gzip layers (one per file map) written into `store`; OCI media types unless `docker`. */
export async function makeImage(
  store: BlobStore,
  layers: Record<string, string | Buffer>[],
  opts: { platform?: Platform; docker?: boolean; label?: string } = {},
): Promise<MadeImage> {
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const layerDescs: Descriptor[] = [];
  const diffIds: Digest[] = [];
  const layerBytes: Buffer[] = [];
  for (const files of layers) {
    const tar = await tarOf(files);
    const gz = gzipSync(tar);
    await store.writeBytes(gz);
    layerBytes.push(gz);
    diffIds.push(sha256(tar));
    layerDescs.push({ mediaType: opts.docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip, digest: sha256(gz), size: gz.length });
  }
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ["PATH=/bin"], Labels: { fixture: opts.label ?? "x" } },
    rootfs: { type: "layers", diff_ids: diffIds },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  await store.writeBytes(configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: opts.docker ? MediaType.dockerManifest : MediaType.ociManifest,
    config: { mediaType: opts.docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.length },
    layers: layerDescs,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    manifest,
    manifestBytes,
    manifestDescriptor: { mediaType: manifest.mediaType as string, digest: sha256(manifestBytes), size: manifestBytes.length },
    config,
    configBytes,
    layerBytes,
  };
}

/** A unique repository name per test run so runs never see each other's blobs. */
export function uniqueRepo(prefix: string): string {
  return `kiln-test/${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
