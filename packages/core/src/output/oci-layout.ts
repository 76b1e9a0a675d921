// OCI image layout output (image-spec image-layout.md): a directory, or the same tree as a tar.
import { mkdir, readFile, writeFile, rename, stat, link, copyFile } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import path from "node:path";
import type { Descriptor, ImageIndex } from "../image/oci.js";
import { MediaType } from "../image/oci.js";
import type { BlobSource } from "./blob-source.js";
import type { ImageArtifact } from "./image-artifact.js";
import { imageBlobs } from "./image-artifact.js";
import { writeTarFile, type ArchiveEntry } from "./tar-writer.js";

export const OCI_LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: "1.0.0" });
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
export const CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name";

export interface OciOutputOptions {
  /** Full image names (`docker.io/library/app:1`) to record in index.json annotations. */
  names?: string[];
  signal?: AbortSignal;
}

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `blobs/${alg}/${hex}`;
}

/** The index.json manifests for an image: one descriptor per name (or one unnamed). */
export function indexDescriptors(image: ImageArtifact, names: string[] = []): Descriptor[] {
  if (names.length === 0) return [{ ...image.manifestDescriptor }];
  return names.map((name) => ({
    ...image.manifestDescriptor,
    annotations: {
      [CONTAINERD_NAME_ANNOTATION]: name,
      [REF_NAME_ANNOTATION]: refNameOf(name),
    },
  }));
}

/** The ref.name annotation is the tag (as BuildKit writes it), or the whole name when untagged. */
function refNameOf(name: string): string {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? name.slice(colon + 1) : name;
}

export function layoutIndex(manifests: Descriptor[]): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
}

/** Entries of an OCI layout tar for one image. Shared with the docker archive, which is a superset. */
export function ociLayoutEntries(image: ImageArtifact, blobs: BlobSource, names: string[]): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [
    { name: "blobs/", type: "directory" },
    { name: "blobs/sha256/", type: "directory" },
  ];
  const seen = new Set<string>();
  for (const d of imageBlobs(image)) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (d.digest === image.manifestDescriptor.digest) entries.push({ name: blobPath(d.digest), data: image.manifestBytes });
    else if (d.digest === image.manifest.config.digest) entries.push({ name: blobPath(d.digest), data: image.configBytes });
    else entries.push({ name: blobPath(d.digest), size: d.size, open: () => blobs.createReadStream(d.digest) });
  }
  entries.push({ name: "oci-layout", data: Buffer.from(OCI_LAYOUT_FILE) });
  entries.push({ name: "index.json", data: Buffer.from(JSON.stringify(layoutIndex(indexDescriptors(image, names)))) });
  return entries;
}

export async function writeOciLayoutTar(image: ImageArtifact, blobs: BlobSource, dest: string, options: OciOutputOptions = {}): Promise<void> {
  await mkdir(path.dirname(path.resolve(dest)), { recursive: true });
  await writeTarFile(dest, ociLayoutEntries(image, blobs, options.names ?? []), options.signal);
}

/**
 * Writes (or adds to) an OCI layout directory. Existing manifests with other names are kept, so one
 * layout can hold several images, as `skopeo copy oci:DIR:tag` expects.
 */
export async function writeOciLayoutDir(
  image: ImageArtifact,
  blobs: BlobSource & { filePath?: (d: `sha256:${string}`) => string | undefined },
  dest: string,
  options: OciOutputOptions = {},
): Promise<void> {
  const dir = path.resolve(dest);
  await mkdir(path.join(dir, "blobs", "sha256"), { recursive: true });
  for (const d of imageBlobs(image)) {
    options.signal?.throwIfAborted();
    const target = path.join(dir, blobPath(d.digest));
    if (await exists(target)) continue;
    const tmp = `${target}.tmp-${process.pid}`;
    if (d.digest === image.manifestDescriptor.digest) await writeFile(tmp, image.manifestBytes);
    else if (d.digest === image.manifest.config.digest) await writeFile(tmp, image.configBytes);
    else {
      // A regular blob is one file to hard-link; a composite (or a source without files) is streamed.
      const file = blobs.filePath?.(d.digest);
      if (file !== undefined) await linkOrCopy(file, tmp);
      else await pipeline(blobs.createReadStream(d.digest), createWriteStream(tmp), options.signal ? { signal: options.signal } : {});
    }
    await rename(tmp, target);
  }
  await writeFile(path.join(dir, "oci-layout"), OCI_LAYOUT_FILE);
  const indexFile = path.join(dir, "index.json");
  let previous: Descriptor[] = [];
  try {
    previous = (JSON.parse(await readFile(indexFile, "utf8")) as ImageIndex).manifests ?? [];
  } catch {
    previous = [];
  }
  const fresh = indexDescriptors(image, options.names ?? []);
  const freshNames = new Set(fresh.map((d) => d.annotations?.[REF_NAME_ANNOTATION] ?? ""));
  const kept = previous.filter((d) => {
    const name = d.annotations?.[REF_NAME_ANNOTATION];
    if (name === undefined) return d.digest !== image.manifestDescriptor.digest && (options.names ?? []).length > 0;
    return !freshNames.has(name);
  });
  const tmpIndex = `${indexFile}.tmp-${process.pid}`;
  await writeFile(tmpIndex, JSON.stringify(layoutIndex([...kept, ...fresh])));
  await rename(tmpIndex, indexFile);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function linkOrCopy(src: string, dest: string): Promise<void> {
  try {
    await link(src, dest);
  } catch {
    await copyFile(src, dest);
  }
}
