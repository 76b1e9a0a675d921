// `docker save` archives: manifest.json naming a config and layer files, in the old layout
// (`<id>/layer.tar`, uncompressed) or the Docker 25+ one (an OCI layout with manifest.json added).
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { computeDigest } from "@kiln/cache";
import { detectCompression } from "@kiln/snapshot";
import type { Descriptor, Digest, ImageIndex, Manifest, Platform } from "../image/oci.js";
import { MediaType } from "../image/oci.js";
import { parseManifest } from "../registry/manifest.js";
import { ImageNotFoundError, InvalidImageError } from "./errors.js";
import type { FileTree } from "./file-tree.js";
import type { OpenedImage } from "./image-source.js";
import { checkConfig, familiar, joinLayers, parseJsonDocument } from "./image-parts.js";
import { blobName } from "./source-layout.js";

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const BLOB_PATH_RE = /^blobs\/sha256\/([a-f0-9]{64})$/;

async function head(tree: FileTree, name: string, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of tree.open(name, { head: n })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function hashMember(tree: FileTree, name: string, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash("sha256");
  await pipeline(tree.open(name), hash, signal ? { signal } : {});
  return `sha256:${hash.digest("hex")}`;
}

function layerMediaType(headBytes: Buffer): string {
  switch (detectCompression(headBytes)) {
    case "gzip":
      return MediaType.dockerLayerGzip;
    case "zstd":
      return MediaType.ociLayerZstd;
    case "none":
      return "application/vnd.docker.image.rootfs.diff.tar";
    default:
      return MediaType.ociLayer; // bzip2/xz have no registered media type; readers sniff the content anyway
  }
}

/** The OCI manifest of an archive's layout part whose config is `configDigest`, if the archive has one. */
async function findOciManifest(tree: FileTree, configDigest: Digest, platform: Platform): Promise<{ manifest: Manifest; descriptor: Descriptor } | undefined> {
  if (!(await tree.has("index.json"))) return undefined;
  const index = parseJsonDocument<ImageIndex>(await tree.readSmall("index.json"), `${tree.location}/index.json`);
  const queue: Descriptor[] = [...(index.manifests ?? [])];
  for (let seen = 0; queue.length > 0 && seen < 64; seen++) {
    const d = queue.shift()!;
    if (!(await tree.has(blobName(d.digest)))) continue;
    const bytes = await tree.readSmall(blobName(d.digest));
    const parsed = parseManifest(`${tree.location}@${d.digest}`, bytes, d.mediaType, d.digest);
    if (parsed.kind === "index") queue.push(...parsed.index.manifests.filter((m) => !m.platform || m.platform.os === platform.os));
    else if (parsed.manifest.config.digest === configDigest) {
      return { manifest: parsed.manifest, descriptor: { mediaType: parsed.mediaType, digest: parsed.digest, size: bytes.length } };
    }
  }
  return undefined;
}

export async function openDockerArchiveImage(
  tree: FileTree,
  options: { spec: string; name?: string; platform: Platform; signal?: AbortSignal },
): Promise<OpenedImage> {
  const where = tree.location;
  if (!(await tree.has("manifest.json"))) throw new ImageNotFoundError(`${where}: not a docker archive (no manifest.json)`);
  const entries = parseJsonDocument<DockerManifestEntry[]>(await tree.readSmall("manifest.json"), `${where}/manifest.json`);
  if (!Array.isArray(entries) || entries.length === 0) throw new ImageNotFoundError(`${where}: manifest.json lists no image`);
  let entry: DockerManifestEntry | undefined;
  if (options.name !== undefined) {
    const wanted = familiar(options.name);
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => familiar(t) === wanted));
    if (!entry) throw new ImageNotFoundError(`${where}: no image tagged ${options.name}`);
  } else if (entries.length === 1) {
    entry = entries[0];
  } else {
    throw new ImageNotFoundError(`${where}: the archive holds ${entries.length} images; name one (${entries.flatMap((e) => e.RepoTags ?? []).join(", ")})`);
  }
  if (!entry || typeof entry.Config !== "string" || !Array.isArray(entry.Layers)) throw new InvalidImageError(`${where}: malformed manifest.json entry`);
  const configBytes = await tree.readSmall(entry.Config);
  const id = computeDigest(configBytes);
  const rawConfig = parseJsonDocument<Record<string, unknown>>(configBytes, `${where}/${entry.Config}`);
  const config = checkConfig(rawConfig, where);

  const oci = await findOciManifest(tree, id, options.platform);
  let manifest: Manifest;
  if (oci && oci.manifest.layers.length === entry.Layers.length) {
    manifest = oci.manifest;
  } else {
    // Old archives have no manifest: describe the files as Docker's v2 manifest would.
    const layers: Descriptor[] = [];
    for (const [i, file] of entry.Layers.entries()) {
      const mediaType = layerMediaType(await head(tree, file, 6));
      const fromPath = BLOB_PATH_RE.exec(file);
      let digest: Digest;
      if (fromPath) digest = `sha256:${fromPath[1]}`;
      else if (mediaType === "application/vnd.docker.image.rootfs.diff.tar" && config.rootfs.diff_ids[i]) digest = config.rootfs.diff_ids[i]!; // an uncompressed layer's digest is its diffID (checked when read)
      else digest = await hashMember(tree, file, options.signal);
      layers.push({ mediaType, digest, size: await tree.size(file) });
    }
    manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, digest: id, size: configBytes.length },
      layers,
    };
  }
  const layers = joinLayers(manifest, config, where);
  const files = entry.Layers;
  const image: OpenedImage = {
    kind: "docker-archive",
    spec: options.spec,
    id,
    manifest,
    config,
    rawConfig,
    layers,
    repoTags: (entry.RepoTags ?? []).map(familiar),
    repoDigests: [],
    openLayer: async (i: number) => tree.open(files[i]!),
  };
  if (oci && manifest === oci.manifest) {
    image.manifestDigest = oci.descriptor.digest;
    image.manifestDescriptor = oci.descriptor;
  }
  return image;
}
