// What every image source (local store, OCI layout, docker archive, registry) hands the commands.
import type { Readable } from "node:stream";
import type { Descriptor, Digest, ImageConfig, LayerDescriptor, Manifest } from "../image/oci.js";

export type ImageSourceKind = "store" | "oci" | "oci-archive" | "docker-archive" | "registry";

export interface OpenedImage {
  kind: ImageSourceKind;
  /** The spec as given. */
  spec: string;
  /** Config digest: Docker's image ID. */
  id: Digest;
  /** The manifest digest, when the image has a real manifest (old `docker save` archives have none). */
  manifestDigest?: Digest;
  manifestDescriptor?: Descriptor;
  /** A real or (for manifest-less archives) synthesized Docker v2 manifest. */
  manifest: Manifest;
  config: ImageConfig;
  /** The config exactly as stored, for fields outside the OCI model (container_config, docker_version, …). */
  rawConfig: Record<string, unknown>;
  /** Manifest layers with their diffIDs from the config, in order (base first). */
  layers: LayerDescriptor[];
  /** Familiar names (`app:1`) the source knows this image by. */
  repoTags: string[];
  /** `repo@sha256:…` manifest references. */
  repoDigests: string[];
  /** When the local tag was last set (store images only). */
  lastTagTime?: string;
  /** Streams layer `index`'s blob as stored (possibly compressed). */
  openLayer(index: number, signal?: AbortSignal): Promise<Readable>;
}
