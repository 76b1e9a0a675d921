// The state a build carries from step to step: the image config so far and its layers.
import type { Digest, ImageConfig, LayerDescriptor, Manifest } from "../image/oci.js";
import { MediaType } from "../image/oci.js";
import type { ImageArtifact } from "../output/image-artifact.js";

export interface ImageState {
  config: ImageConfig;
  layers: LayerDescriptor[];
}

export function addLayer(state: ImageState, layer: LayerDescriptor): void {
  state.layers.push(layer);
  state.config.rootfs.diff_ids.push(layer.diffID);
}

export function cloneState(state: ImageState): ImageState {
  return { config: structuredClone(state.config), layers: state.layers.map((l) => ({ ...l })) };
}

/** Where finished images' small blobs go (the cache package's BlobStore satisfies it). */
export interface JsonBlobWriter {
  writeBytes(data: Uint8Array | string): Promise<{ digest: Digest; size: number }>;
}

/** Serializes config and manifest, stores both, and returns the artifact that outputs write. */
export async function commitImage(state: ImageState, store: JsonBlobWriter, created?: string): Promise<ImageArtifact> {
  const config: ImageConfig = structuredClone(state.config);
  if (created !== undefined) config.created = created;
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc = await store.writeBytes(configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDesc.digest, size: configDesc.size },
    layers: state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDesc = await store.writeBytes(manifestBytes);
  return {
    manifestDescriptor: { mediaType: MediaType.ociManifest, digest: manifestDesc.digest, size: manifestDesc.size },
    manifest,
    manifestBytes,
    config,
    configBytes,
  };
}
