// Images in an OCI image layout (image-spec image-layout.md), as a directory or as a tar archive.
import { computeDigest } from "@kiln/cache";
import type { Descriptor, Digest, ImageIndex, Platform } from "../image/oci.js";
import { formatPlatform } from "../image/oci.js";
import { CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION } from "../output/oci-layout.js";
import { parseManifest } from "../registry/manifest.js";
import { selectManifest } from "../registry/platform.js";
import { ImageNotFoundError, InvalidImageError } from "./errors.js";
import type { FileTree } from "./file-tree.js";
import type { ImageSourceKind, OpenedImage } from "./image-source.js";
import { checkConfig, familiar, joinLayers, parseJsonDocument, uniq } from "./image-parts.js";

export function blobName(digest: string): string {
  const [alg, hex] = digest.split(":");
  if (!alg || !hex || !/^[a-z0-9]+$/.test(alg) || !/^[a-f0-9]+$/.test(hex)) throw new InvalidImageError(`invalid digest ${JSON.stringify(digest)}`);
  return `blobs/${alg}/${hex}`;
}

/** An index.json entry matches `name` by its ref.name (the tag BuildKit writes) or its full image name. */
function entryMatches(d: Descriptor, name: string): boolean {
  const refName = d.annotations?.[REF_NAME_ANNOTATION];
  const imageName = d.annotations?.[CONTAINERD_NAME_ANNOTATION];
  return refName === name || imageName === name || (imageName !== undefined && familiar(imageName) === familiar(name));
}

function describeEntry(d: Descriptor): string {
  return d.annotations?.[CONTAINERD_NAME_ANNOTATION] ?? d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest;
}

/** Picks the index.json entry for `name` (or the only entry). */
export function pickIndexEntry(index: ImageIndex, name: string | undefined, location: string): Descriptor {
  const entries = index.manifests ?? [];
  if (name !== undefined) {
    const found = entries.find((d) => entryMatches(d, name));
    if (!found) throw new ImageNotFoundError(`${location}: no image named ${JSON.stringify(name)} (has: ${entries.map(describeEntry).join(", ") || "nothing"})`);
    return found;
  }
  if (entries.length === 1) return entries[0]!;
  if (entries.length === 0) throw new ImageNotFoundError(`${location}: the layout holds no image`);
  throw new ImageNotFoundError(`${location}: the layout holds ${entries.length} images; name one (${entries.map(describeEntry).join(", ")})`);
}

export async function openLayoutImage(
  tree: FileTree,
  options: { kind: ImageSourceKind; spec: string; name?: string; platform: Platform },
): Promise<OpenedImage> {
  const where = tree.location;
  if (!(await tree.has("index.json"))) throw new ImageNotFoundError(`${where}: not an OCI layout (no index.json)`);
  const index = parseJsonDocument<ImageIndex>(await tree.readSmall("index.json"), `${where}/index.json`);
  const top = pickIndexEntry(index, options.name, where);
  let entry = top;
  for (let depth = 0; depth < 4; depth++) {
    const bytes = await tree.readSmall(blobName(entry.digest));
    const parsed = parseManifest(`${where}@${entry.digest}`, bytes, entry.mediaType, entry.digest);
    if (parsed.kind === "index") {
      const chosen = selectManifest(parsed.index.manifests, options.platform);
      if (!chosen) throw new ImageNotFoundError(`${where}: no manifest for platform ${formatPlatform(options.platform)} in ${entry.digest}`);
      entry = chosen;
      continue;
    }
    const manifest = parsed.manifest;
    const configBytes = await tree.readSmall(blobName(manifest.config.digest));
    if (computeDigest(configBytes) !== manifest.config.digest) throw new InvalidImageError(`${where}: config blob does not match ${manifest.config.digest}`);
    const rawConfig = parseJsonDocument<Record<string, unknown>>(configBytes, `${where}: config`);
    const config = checkConfig(rawConfig, where);
    const layers = joinLayers(manifest, config, where);
    const fullName = top.annotations?.[CONTAINERD_NAME_ANNOTATION];
    const manifestDigest = parsed.digest as Digest;
    return {
      kind: options.kind,
      spec: options.spec,
      id: manifest.config.digest,
      manifestDigest,
      manifestDescriptor: { mediaType: parsed.mediaType, digest: manifestDigest, size: bytes.length },
      manifest,
      config,
      rawConfig,
      layers,
      repoTags: fullName ? uniq([familiar(fullName)]) : [],
      repoDigests: [],
      openLayer: async (i: number) => tree.open(blobName(layers[i]!.digest)),
    };
  }
  throw new InvalidImageError(`${where}: indexes nested too deeply`);
}
