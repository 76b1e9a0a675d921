// Images in kiln's local store, by name (`app:1`), by digest reference, or by image ID (prefix).
import type { Readable } from "node:stream";
import { BlobNotFoundError } from "@kiln/cache";
import type { Digest, Platform } from "../image/oci.js";
import { formatReference, InvalidReferenceError, parseReference } from "../image/reference.js";
import { loadImageFromStore } from "../engine/base-image.js";
import type { KilnStore } from "../engine/store.js";
import { ImageNotFoundError } from "./errors.js";
import type { OpenedImage } from "./image-source.js";
import { checkConfig, familiar, joinLayers, repoDigest, uniq } from "./image-parts.js";

const ID_RE = /^(?:sha256:)?([0-9a-f]{12,64})$/;

/** Finds the tagged image whose config digest (image ID), manifest or tag digest starts with `hex`. */
async function findById(store: KilnStore, hex: string, platform: Platform): Promise<Digest | undefined> {
  for (const tag of await store.tags.list()) {
    const digest = tag.descriptor.digest as Digest;
    if (digest.slice(7).startsWith(hex)) return digest;
    try {
      const { manifest } = await loadImageFromStore(store, digest, platform);
      if (manifest.config.digest.slice(7).startsWith(hex)) return digest;
    } catch {
      // a tag whose blobs are gone cannot match
    }
  }
  return undefined;
}

async function resolveSpec(store: KilnStore, spec: string, platform: Platform): Promise<{ digest: Digest; name?: string }> {
  let parseError: unknown;
  try {
    const ref = parseReference(spec);
    if (ref.digest) {
      if (await store.blobs.has(ref.digest)) return { digest: ref.digest };
    } else {
      const name = formatReference(ref);
      const tagged = await store.tags.get(name);
      if (tagged && (await store.blobs.has(tagged.digest as Digest))) return { digest: tagged.digest as Digest, name };
    }
  } catch (err) {
    if (!(err instanceof InvalidReferenceError)) throw err;
    parseError = err;
  }
  const id = ID_RE.exec(spec);
  if (id) {
    const found = await findById(store, id[1]!, platform);
    if (found) return { digest: found };
  }
  throw new ImageNotFoundError(`${spec}: no such image in the local store (${store.root})`, parseError ? { cause: parseError } : undefined);
}

export async function openStoreImage(spec: string, store: KilnStore, platform: Platform): Promise<OpenedImage> {
  const { digest } = await resolveSpec(store, spec, platform);
  const { manifestDigest, manifest } = await loadImageFromStore(store, digest, platform);
  const rawConfig = await store.blobs.readJson<Record<string, unknown>>(manifest.config.digest);
  const config = checkConfig(rawConfig, spec);
  const layers = joinLayers(manifest, config, spec);
  const tags = (await store.tags.list()).filter((t) => t.descriptor.digest === digest);
  const manifestSize = (await store.blobs.stat(manifestDigest))?.size ?? 0;
  const image: OpenedImage = {
    kind: "store",
    spec,
    id: manifest.config.digest,
    manifestDigest,
    manifestDescriptor: { mediaType: manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json", digest: manifestDigest, size: manifestSize },
    manifest,
    config,
    rawConfig,
    layers,
    repoTags: uniq(tags.map((t) => familiar(t.name))),
    // The digest a registry would know the image by once pushed (the tag's: the index for multi-platform images).
    repoDigests: uniq(tags.flatMap((t) => repoDigest(t.name, digest) ?? [])),
    openLayer: async (index: number): Promise<Readable> => {
      const layer = layers[index]!;
      try {
        return store.blobs.createReadStream(layer.digest);
      } catch (err) {
        if (err instanceof BlobNotFoundError) throw new ImageNotFoundError(`${spec}: layer ${layer.digest} is missing from the store`, { cause: err });
        throw err;
      }
    },
  };
  const lastTag = tags.map((t) => t.updatedAt).sort().at(-1);
  if (lastTag) image.lastTagTime = lastTag;
  return image;
}
