/** Read an image archive (`docker save` tar, OCI layout dir or tar) into config, manifest and layers. */
import { openArchive, type ArchiveFiles } from "./archive.js";
import { ImageFormatError } from "./errors.js";

/** The parts of an OCI / Docker image config the harness looks at; other fields pass through. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  [key: string]: unknown;
}

export interface ImageLayer {
  /** Digest of the blob as stored (compressed for OCI, the tar itself for docker save). */
  digest: string;
  /** Digest of the uncompressed tar (config rootfs.diff_ids). */
  diffID: string;
  size: number;
  mediaType: string;
  /** The stored blob's bytes (possibly compressed). */
  open(): AsyncIterable<Buffer>;
}

export interface ImageArchive {
  format: "docker-save" | "oci-layout";
  config: ImageConfig;
  /** docker save: its manifest.json entry; OCI: the image manifest. */
  manifest: Record<string, unknown>;
  layers: ImageLayer[];
  history: HistoryEntry[];
}

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
  annotations?: Record<string, string>;
}

const blobPath = (digest: string): string => {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
  if (!m) throw new ImageFormatError(`bad digest ${digest}`);
  return `blobs/${m[1]}/${m[2]}`;
};

async function readJson<T>(files: ArchiveFiles, name: string): Promise<T> {
  try {
    return JSON.parse((await files.readBuffer(name)).toString("utf8")) as T;
  } catch (e) {
    throw new ImageFormatError(`cannot parse ${name}: ${(e as Error).message}`);
  }
}

export interface ReadArchiveOptions {
  /** OCI layouts with several images: pick by org.opencontainers.image.ref.name annotation. */
  ref?: string;
}

/** Read a `docker save` tar, an OCI image layout directory, or an OCI layout tar. */
export async function readImageArchive(p: string, opts: ReadArchiveOptions = {}): Promise<ImageArchive> {
  const files = await openArchive(p);
  if (await files.has("manifest.json")) return readDockerSave(files);
  if (await files.has("index.json")) return readOciLayout(files, opts);
  throw new ImageFormatError(`${p}: neither a docker save archive (manifest.json) nor an OCI layout (index.json)`);
}

async function readDockerSave(files: ArchiveFiles): Promise<ImageArchive> {
  const entries = await readJson<{ Config: string; RepoTags?: string[]; Layers: string[] }[]>(files, "manifest.json");
  const m = entries[0];
  if (!m || entries.length !== 1) throw new ImageFormatError(`docker save archive holds ${entries.length} images, expected 1`);
  const config = await readJson<ImageConfig>(files, m.Config);
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== m.Layers.length) {
    throw new ImageFormatError(`config lists ${diffIDs.length} diff_ids but the archive has ${m.Layers.length} layers`);
  }
  const layers = await Promise.all(
    m.Layers.map(async (name, i): Promise<ImageLayer> => ({
      // Old docker save stores layers uncompressed (the stored digest is the diffID); the OCI-style
      // archive (Docker 25+, kiln) names each layer by its blob digest, compressed or not.
      digest: /^blobs\/sha256\/[a-f0-9]{64}$/.test(name) ? `sha256:${name.slice("blobs/sha256/".length)}` : diffIDs[i]!,
      diffID: diffIDs[i]!,
      size: await files.size(name),
      mediaType: "application/vnd.docker.image.rootfs.diff.tar",
      open: () => files.open(name),
    })),
  );
  return { format: "docker-save", config, manifest: m as unknown as Record<string, unknown>, layers, history: config.history ?? [] };
}

async function readOciLayout(files: ArchiveFiles, opts: ReadArchiveOptions): Promise<ImageArchive> {
  let desc = pickManifest(await readJson<{ manifests: Descriptor[] }>(files, "index.json"), opts, "index.json");
  // Descend through nested indexes (a multi-platform image) to one image manifest.
  for (let depth = 0; desc.mediaType === OCI_INDEX || desc.mediaType === DOCKER_LIST; depth++) {
    if (depth > 4) throw new ImageFormatError("index nesting too deep");
    desc = pickManifest(await readJson<{ manifests: Descriptor[] }>(files, blobPath(desc.digest)), {}, desc.digest);
  }
  const manifest = await readJson<{ config: Descriptor; layers: Descriptor[] }>(files, blobPath(desc.digest));
  const config = await readJson<ImageConfig>(files, blobPath(manifest.config.digest));
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== manifest.layers.length) {
    throw new ImageFormatError(`config lists ${diffIDs.length} diff_ids but the manifest has ${manifest.layers.length} layers`);
  }
  const layers = manifest.layers.map(
    (l, i): ImageLayer => ({
      digest: l.digest,
      diffID: diffIDs[i]!,
      size: l.size ?? 0,
      mediaType: l.mediaType ?? "",
      open: () => files.open(blobPath(l.digest)),
    }),
  );
  return {
    format: "oci-layout",
    config,
    manifest: manifest as unknown as Record<string, unknown>,
    layers,
    history: config.history ?? [],
  };
}

function pickManifest(index: { manifests: Descriptor[] }, opts: ReadArchiveOptions, where: string): Descriptor {
  const ms = index.manifests ?? [];
  if (opts.ref) {
    const hit = ms.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === opts.ref);
    if (!hit) throw new ImageFormatError(`${where}: no manifest named ${opts.ref}`);
    return hit;
  }
  const linux = ms.filter((m) => !m.platform || (m.platform.os === "linux" && m.platform.architecture !== "unknown"));
  const amd64 = linux.find((m) => m.platform?.architecture === "amd64");
  const pick = amd64 ?? linux[0] ?? ms[0];
  if (!pick) throw new ImageFormatError(`${where}: no manifests`);
  return pick;
}
