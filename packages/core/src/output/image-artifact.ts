import type { Descriptor, ImageConfig, Manifest } from "../image/oci.js";

/** A finished image: its manifest (and descriptor) and its parsed config. Blobs live in a BlobSource. */
export interface ImageArtifact {
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  manifestBytes: Buffer;
  config: ImageConfig;
  configBytes: Buffer;
}

/** Every blob an image consists of, manifest first. */
export function imageBlobs(image: ImageArtifact): Descriptor[] {
  return [image.manifestDescriptor, image.manifest.config, ...image.manifest.layers];
}
