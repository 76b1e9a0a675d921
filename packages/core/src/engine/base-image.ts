// Resolving a FROM line to an image: scratch, an image tagged in the local store, or (through a
// pluggable puller) a registry.
import type { Digest, ImageConfig, ImageIndex, LayerDescriptor, Manifest, Platform } from "../image/oci.js";
import { isIndexMediaType, formatPlatform } from "../image/oci.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { KilnStore } from "./store.js";

export interface ResolvedBase {
  /** Normalized reference, or "scratch". */
  name: string;
  /** The manifest digest the name resolved to (undefined for scratch). */
  manifestDigest?: Digest;
  config: ImageConfig;
  layers: LayerDescriptor[];
}

/** Pulls an image into the store and returns its manifest digest (the registry client provides one). */
export interface ImagePuller {
  pull(reference: string, options: { platform: Platform; signal?: AbortSignal }): Promise<{ manifestDigest: Digest }>;
}

export class BaseImageNotFoundError extends Error {
  override readonly name = "BaseImageNotFoundError";
}

/** Reads an image (manifest or index) from the store and picks the manifest for `platform`. */
export async function loadImageFromStore(store: KilnStore, digest: Digest, platform: Platform): Promise<{ manifestDigest: Digest; manifest: Manifest; config: ImageConfig }> {
  const raw = await store.blobs.readJson<Manifest | ImageIndex>(digest);
  let manifestDigest = digest;
  let manifest: Manifest;
  if ("manifests" in raw || isIndexMediaType((raw as { mediaType?: string }).mediaType)) {
    const index = raw as ImageIndex;
    const match = index.manifests.find(
      (m) => m.platform && m.platform.os === platform.os && m.platform.architecture === platform.architecture && (!platform.variant || !m.platform.variant || m.platform.variant === platform.variant),
    );
    if (!match) throw new BaseImageNotFoundError(`no image for platform ${formatPlatform(platform)} in ${digest}`);
    manifestDigest = match.digest;
    manifest = await store.blobs.readJson<Manifest>(match.digest);
  } else manifest = raw as Manifest;
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest);
  return { manifestDigest, manifest, config };
}

export async function resolveBaseImage(
  store: KilnStore,
  image: string,
  options: { platform: Platform; puller?: ImagePuller; pull?: boolean; signal?: AbortSignal },
): Promise<ResolvedBase> {
  const ref = parseReference(image);
  const name = formatReference(ref);
  let digest: Digest | undefined = ref.digest;
  if (!digest && !options.pull) digest = (await store.tags.get(name))?.digest as Digest | undefined;
  if (digest && !(await store.blobs.has(digest))) digest = undefined;
  if (!digest) {
    if (!options.puller) throw new BaseImageNotFoundError(`${image}: not found in the local store (${name}), and no registry client is configured`);
    digest = (await options.puller.pull(name, options.signal ? { platform: options.platform, signal: options.signal } : { platform: options.platform })).manifestDigest;
  }
  const { manifestDigest, manifest, config } = await loadImageFromStore(store, digest, options.platform);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new BaseImageNotFoundError(`${image}: manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length}`);
  }
  const layers: LayerDescriptor[] = manifest.layers.map((l, i) => ({ ...l, diffID: diffIds[i]! }));
  return { name, manifestDigest, config, layers };
}
