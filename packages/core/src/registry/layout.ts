// Copies between registries and OCI image layout directories (image-spec image-layout.md), usable
// without a build: registry → layout goes through the BlobStore; layout → registry reads the layout.
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { BlobStore, isDigest } from "@kiln/cache";
import { hostPlatform, type Descriptor, type Digest, type ImageConfig, type ImageIndex, type Manifest, type Platform } from "../image/oci.js";
import { formatReference, parseReference, type ImageReference } from "../image/reference.js";
import type { ImageArtifact } from "../output/image-artifact.js";
import { REF_NAME_ANNOTATION, writeOciLayoutDir } from "../output/oci-layout.js";
import { LayoutError } from "./errors.js";
import { parseManifest } from "./manifest.js";
import { pullImage, type PullOptions, type PulledImage } from "./pull.js";
import { pushImage, type PushBlobSource, type PushOptions, type PushResult } from "./push.js";
import { selectManifest } from "./platform.js";

export interface CopyToLayoutOptions extends PullOptions {
  /** Store to pull through; default: the kiln store (defaultStoreRoot()). */
  store?: BlobStore;
  /** Names recorded in index.json; default: the reference itself. */
  names?: string[];
}

/** Pulls `ref` (one platform) and writes it into the OCI layout directory `dir` (created or added to). */
export async function copyImageToLayout(ref: string | ImageReference, dir: string, options: CopyToLayoutOptions = {}): Promise<PulledImage> {
  const store = options.store ?? (await BlobStore.open());
  const image = await pullImage(ref, store, options);
  // ref.name holds a tag; an image pulled by digest alone is recorded unnamed.
  const { digest: _digest, ...named } = image.reference;
  const names = options.names ?? (named.tag !== undefined ? [formatReference(named)] : []);
  await writeOciLayoutDir(image, store, dir, { names, ...(options.signal ? { signal: options.signal } : {}) });
  return image;
}

/** Blobs of a layout directory, read in place. */
export function layoutBlobSource(dir: string): PushBlobSource & { path(digest: Digest): string } {
  const blobPath = (digest: Digest): string => {
    if (!isDigest(digest)) throw new LayoutError(`invalid digest ${digest}`);
    return path.join(dir, "blobs", "sha256", digest.slice("sha256:".length));
  };
  return {
    path: blobPath,
    createReadStream: (digest, opts = {}) => createReadStream(blobPath(digest), opts),
  };
}

export interface ReadLayoutOptions {
  /** Pick the index.json entry with this org.opencontainers.image.ref.name (or io.containerd.image.name). */
  name?: string;
  /** When the entry is an index, the platform to take from it (default: host). */
  platform?: Platform;
}

/** Reads one image of an OCI layout directory (index.json → manifest → config). */
export async function readLayoutImage(dir: string, options: ReadLayoutOptions = {}): Promise<ImageArtifact> {
  const blobs = layoutBlobSource(dir);
  let indexText: string;
  try {
    indexText = await readFile(path.join(dir, "index.json"), "utf8");
  } catch (err) {
    throw new LayoutError(`${dir} is not an OCI layout: ${(err as Error).message}`, { cause: err });
  }
  const top = JSON.parse(indexText) as ImageIndex;
  const entries = top.manifests ?? [];
  let entry: Descriptor | undefined;
  if (options.name !== undefined) {
    entry = entries.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === options.name || d.annotations?.["io.containerd.image.name"] === options.name);
    if (!entry) throw new LayoutError(`no image named ${JSON.stringify(options.name)} in ${dir}`);
  } else if (entries.length === 1) {
    entry = entries[0];
  } else {
    throw new LayoutError(`${dir} holds ${entries.length} images: name one (${entries.map((d) => d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest).join(", ")})`);
  }
  if (!entry) throw new LayoutError(`${dir} holds no image`);
  for (let depth = 0; depth < 4; depth++) {
    const bytes = await readFile(blobs.path(entry.digest));
    const parsed = parseManifest(`${dir}@${entry.digest}`, bytes, entry.mediaType, entry.digest);
    if (parsed.kind === "manifest") {
      const configBytes = await readFile(blobs.path(parsed.manifest.config.digest));
      const manifest: Manifest = parsed.manifest;
      return {
        manifestDescriptor: { mediaType: parsed.mediaType, digest: parsed.digest, size: bytes.length },
        manifest,
        manifestBytes: bytes,
        config: JSON.parse(configBytes.toString("utf8")) as ImageConfig,
        configBytes,
      };
    }
    const wanted = options.platform ?? hostPlatform();
    const chosen = selectManifest(parsed.index.manifests, wanted);
    if (!chosen) throw new LayoutError(`no manifest for the requested platform in ${dir}`);
    entry = chosen;
  }
  throw new LayoutError(`indexes nested too deeply in ${dir}`);
}

/** Pushes one image of an OCI layout directory to `ref`. */
export async function pushLayout(dir: string, ref: string | ImageReference, options: PushOptions & ReadLayoutOptions = {}): Promise<PushResult> {
  const image = await readLayoutImage(dir, options);
  for (const layer of image.manifest.layers) {
    const st = await stat(layoutBlobSource(dir).path(layer.digest)).catch(() => undefined);
    if (!st) throw new LayoutError(`layer ${layer.digest} is missing from ${dir}`);
  }
  return pushImage(image, layoutBlobSource(dir), typeof ref === "string" ? parseReference(ref) : ref, options);
}
