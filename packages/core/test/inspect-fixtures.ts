// Builds small images by hand into a kiln store: gzip layers from writeLayerBlob, a config, a manifest, a tag.
import { Readable } from "node:stream";
import { writeLayerBlob, type LayerEntry, type LayerInfo } from "@kiln/snapshot";
import type { Digest, HistoryEntry, ImageConfig, KilnStore, Manifest } from "@kiln/core";
import type { ImageArtifact } from "../src/output/image-artifact.js";

const MTIME = Date.UTC(2024, 0, 1);

export const file = (path: string, content: string | Buffer, mode = 0o644): LayerEntry => {
  const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return { path, type: "file", mode, uid: 0, gid: 0, mtimeMs: MTIME, size: body.length, open: () => Readable.from([body]) };
};
export const dir = (path: string): LayerEntry => ({ path, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: MTIME });
export const symlink = (path: string, target: string): LayerEntry => ({ path, type: "symlink", mode: 0o777, uid: 0, gid: 0, mtimeMs: MTIME, linkname: target });
export const hardlink = (path: string, target: string): LayerEntry => ({ path, type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtimeMs: MTIME, linkname: target });

export async function storeLayer(store: KilnStore, entries: LayerEntry[]): Promise<LayerInfo> {
  const ingest = store.blobs.ingest();
  const info = await writeLayerBlob(entries, ingest);
  const { digest } = await ingest.commit();
  if (digest !== info.digest) throw new Error(`layer digest ${digest} != ${info.digest}`);
  return info;
}

export interface BuiltImage extends ImageArtifact {
  layers: LayerInfo[];
  name: string;
}

/** Stores layers + config + manifest and tags the manifest as `name` (a normalized reference). */
export async function buildImage(
  store: KilnStore,
  name: string,
  layers: LayerEntry[][],
  config: { history: HistoryEntry[]; created: string; runtime?: ImageConfig["config"]; diffIdOverride?: Digest[] },
): Promise<BuiltImage> {
  const infos: LayerInfo[] = [];
  for (const entries of layers) infos.push(await storeLayer(store, entries));
  const imageConfig: ImageConfig = {
    created: config.created,
    architecture: "amd64",
    os: "linux",
    config: config.runtime ?? {},
    rootfs: { type: "layers", diff_ids: config.diffIdOverride ?? infos.map((l) => l.diffID) },
    history: config.history,
  };
  const configWrite = await store.blobs.writeJson(imageConfig);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configWrite.digest, size: configWrite.size },
    layers: infos.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestWrite = await store.blobs.writeJson(manifest);
  const manifestDescriptor = { mediaType: manifest.mediaType!, digest: manifestWrite.digest, size: manifestWrite.size };
  await store.tags.set(name, manifestDescriptor);
  return {
    name,
    layers: infos,
    manifest,
    manifestBytes: manifestWrite.bytes,
    manifestDescriptor,
    config: imageConfig,
    configBytes: configWrite.bytes,
  };
}
