// `--cache-to`: writes the records of a build's steps (and the blobs they reference) to a local cache
// directory (an OCI layout) or to a registry as an OCI artifact.
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Lease, computeDigest, isDigest, recordBlobs, type BlobStore, type CacheIndex, type CacheRecord } from "@kiln/cache";
import type { Descriptor, Digest, ImageConfig, ImageIndex } from "../image/oci.js";
import { MediaType } from "../image/oci.js";
import type { ImageArtifact } from "../output/image-artifact.js";
import { REF_NAME_ANNOTATION } from "../output/oci-layout.js";
import { LayerCompressor, gzipMediaTypeOf } from "../output/compress-image.js";
import { RegistryClient } from "../registry/client.js";
import type { ProgressCallback } from "../registry/progress.js";
import { pushImage } from "../registry/push.js";
import {
  CACHE_ARTIFACT_TYPE,
  CACHE_CONFIG_MEDIA_TYPE,
  FILES_INDEX_MEDIA_TYPE,
  LOCAL_CACHE_REF_NAME,
  UNCOMPRESSED_ANNOTATION,
  UNCOMPRESSED_SIZE_ANNOTATION,
  cacheManifest,
  type CacheConfig,
  type ExportedRecord,
} from "./format.js";
import { LazyBlobFetcher, LazyBlobUnavailableError } from "./lazy-fetcher.js";
import type { CacheToSpec } from "./spec.js";

/** The stores export and import work on; KilnStore satisfies it. */
export interface CacheStores {
  blobs: BlobStore;
  cache: CacheIndex;
}

/** Step keys of the build, as the engine knows them. */
export interface CacheExportKeys {
  /** The target stage's steps (mode=min). */
  final: Digest[];
  /** Every step of every stage built (mode=max). */
  all: Digest[];
}

export interface ExportCacheOptions {
  keys: CacheExportKeys;
  client?: RegistryClient;
  /** Fetches blobs of lazy records that must be copied (shared with the build, so nothing is fetched twice). */
  fetcher?: LazyBlobFetcher;
  /** The build's lease; without one the export takes its own while it reads blobs. */
  lease?: Lease;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

export interface ExportCacheResult {
  manifestDigest: Digest;
  records: number;
  blobs: number;
  /** Registry exports: what happened to each blob. */
  uploaded: Digest[];
  mounted: Digest[];
  skipped: Digest[];
}

const OCTET_STREAM = "application/octet-stream";

/** FROM records are recreated by every build from the base image; their blobs are the base image's layers. */
function isFromRecord(r: CacheRecord): boolean {
  return r.parent === null && /^FROM\s/i.test(r.inputs.instruction);
}

function layerOf(r: CacheRecord): Partial<Descriptor> | undefined {
  const result = r.result;
  if (typeof result !== "object" || result === null) return undefined;
  const layer = (result as { layer?: Partial<Descriptor> }).layer;
  return typeof layer === "object" && layer !== null ? layer : undefined;
}

/**
 * The records to export and a descriptor for every blob they reference (records with unavailable blobs are
 * left out). With `compress`, uncompressed layers travel as their gzip forms (as BuildKit's caches do; made
 * once and remembered, like an output's), annotated with the uncompressed digest the records name.
 */
async function collect(
  stores: CacheStores,
  fetcher: LazyBlobFetcher,
  lease: Lease,
  keys: Digest[],
  compress: boolean,
  signal: AbortSignal | undefined,
): Promise<{ records: ExportedRecord[]; blobs: Descriptor[] }> {
  const compressor = new LayerCompressor(stores.blobs, {
    ensureBlob: (d) => fetcher.ensureBlob(d, signal),
    isAvailable: (d) => fetcher.isAvailable(d),
    ...(signal ? { signal } : {}),
  });
  const gzipForm = async (digest: Digest, mediaType: string, sizeHint: number | undefined): Promise<Descriptor | undefined> => {
    const size = (await stores.blobs.stat(digest))?.size ?? (await fetcher.source(digest))?.size ?? sizeHint;
    if (size === undefined || !(await fetcher.isAvailable(digest))) return undefined;
    try {
      const gz = await compressor.gzip(digest);
      await lease.add([gz.digest]);
      return { mediaType, digest: gz.digest, size: gz.size, annotations: { [UNCOMPRESSED_ANNOTATION]: digest, [UNCOMPRESSED_SIZE_ANNOTATION]: String(size) } };
    } catch (err) {
      if (err instanceof LazyBlobUnavailableError) return undefined;
      throw err;
    }
  };
  const records: ExportedRecord[] = [];
  const blobs = new Map<Digest, Descriptor>();
  const describe = async (digest: Digest, mediaType: string, sizeHint: number | undefined): Promise<Descriptor | undefined> => {
    const known = blobs.get(digest);
    if (known) return known;
    const size = (await stores.blobs.stat(digest))?.size ?? (await fetcher.source(digest))?.size ?? (sizeHint !== undefined && (await fetcher.isAvailable(digest)) ? sizeHint : undefined);
    return size === undefined ? undefined : { mediaType, digest, size };
  };
  for (const key of new Set(keys)) {
    const r = await stores.cache.get(key);
    if (!r || isFromRecord(r)) continue;
    // Leased before looking at the blobs, so a concurrent GC cannot take them between the stat and the copy.
    await lease.add(recordBlobs(r));
    const layer = layerOf(r);
    const descs: Descriptor[] = [];
    let complete = true;
    for (const d of r.blobs) {
      const isLayer = layer?.digest === d;
      const gzipType = compress && isLayer && typeof layer.mediaType === "string" ? gzipMediaTypeOf(layer.mediaType) : undefined;
      if (gzipType !== undefined) {
        const desc = blobs.get(d) ?? (await gzipForm(d, gzipType, layer?.size));
        if (!desc) complete = false;
        else descs.push(desc);
        continue;
      }
      const desc = await describe(d, isLayer && typeof layer.mediaType === "string" ? layer.mediaType : OCTET_STREAM, isLayer ? layer.size : undefined);
      if (!desc) complete = false;
      else descs.push(desc);
    }
    if (!complete) continue;
    const inputs = { ...r.inputs };
    if (isDigest(inputs.filesIndex)) {
      const desc = await describe(inputs.filesIndex, FILES_INDEX_MEDIA_TYPE, undefined);
      if (desc) descs.push(desc);
      else delete inputs.filesIndex; // only explains misses; not worth dropping the record for
    }
    // Keyed by the digest records name (a gzip form under its uncompressed digest), so each is made once.
    for (const desc of descs) blobs.set((desc.annotations?.[UNCOMPRESSED_ANNOTATION] as Digest | undefined) ?? desc.digest, desc);
    records.push({ key: r.key, parent: r.parent, inputs, result: r.result, blobs: r.blobs, createdAt: r.createdAt });
  }
  return { records, blobs: [...blobs.values()] };
}

export async function exportCache(stores: CacheStores, spec: CacheToSpec, options: ExportCacheOptions): Promise<ExportCacheResult> {
  const client = options.client ?? new RegistryClient();
  const fetcher = options.fetcher ?? (await LazyBlobFetcher.open(stores.blobs, { client }));
  const keys = spec.mode === "max" ? [...options.keys.all, ...options.keys.final] : options.keys.final;
  const lease = options.lease ?? (await Lease.acquire(stores.blobs, options.signal ? { signal: options.signal } : {}));
  try {
    const { records, blobs } = await collect(stores, fetcher, lease, keys, spec.compression !== "uncompressed", options.signal);
    return await writeCache(stores, spec, options, client, fetcher, records, blobs);
  } finally {
    if (!options.lease) await lease.release();
  }
}

async function writeCache(
  stores: CacheStores,
  spec: CacheToSpec,
  options: ExportCacheOptions,
  client: RegistryClient,
  fetcher: LazyBlobFetcher,
  records: ExportedRecord[],
  blobs: Descriptor[],
): Promise<ExportCacheResult> {
  const config: CacheConfig = { version: 1, mode: spec.mode, records };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: computeDigest(configBytes), size: configBytes.length };
  const manifest = cacheManifest(configDesc, blobs);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = computeDigest(manifestBytes);
  const result: ExportCacheResult = { manifestDigest, records: records.length, blobs: blobs.length, uploaded: [], mounted: [], skipped: [] };

  if (spec.type === "local") {
    await writeLocalCache(stores.blobs, fetcher, spec.dest, { configBytes, manifestBytes, manifestDigest, blobs, signal: options.signal });
    return result;
  }
  const artifact: ImageArtifact = {
    manifestDescriptor: { mediaType: MediaType.ociManifest, digest: manifestDigest, size: manifestBytes.length },
    manifest,
    manifestBytes,
    // pushImage uploads the config from configBytes and never reads the parsed form, which an artifact lacks.
    config: {} as ImageConfig,
    configBytes,
  };
  const pushed = await pushImage(artifact, fetcher.pushSource(options.signal), spec.ref, {
    client,
    mountFrom: fetcher.mountHint,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { ...result, uploaded: pushed.uploaded, mounted: pushed.mounted, skipped: pushed.skipped };
}

interface LocalWrite {
  configBytes: Buffer;
  manifestBytes: Buffer;
  manifestDigest: Digest;
  blobs: Descriptor[];
  signal: AbortSignal | undefined;
}

/** An OCI layout: blobs added (existing ones kept, so repeated exports only add), index.json replaced last. */
async function writeLocalCache(blobs: BlobStore, fetcher: LazyBlobFetcher, dest: string, w: LocalWrite): Promise<void> {
  const blobDir = path.join(dest, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  const target = (d: Digest) => path.join(blobDir, d.slice("sha256:".length));
  for (const desc of w.blobs) {
    w.signal?.throwIfAborted();
    if ((await stat(target(desc.digest)).catch(() => undefined))?.size === desc.size) continue;
    await fetcher.ensureBlob(desc.digest, w.signal);
    await atomicCopy(blobs, desc.digest, target(desc.digest), w.signal);
  }
  await atomicWrite(target(computeDigest(w.configBytes)), w.configBytes);
  await atomicWrite(target(w.manifestDigest), w.manifestBytes);
  await atomicWrite(path.join(dest, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const index: ImageIndex & { mediaType: string } = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: w.manifestDigest,
        size: w.manifestBytes.length,
        annotations: { [REF_NAME_ANNOTATION]: LOCAL_CACHE_REF_NAME, "org.opencontainers.artifact.type": CACHE_ARTIFACT_TYPE },
      },
    ],
  };
  await atomicWrite(path.join(dest, "index.json"), JSON.stringify(index));
}

function tempBeside(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
}

async function atomicWrite(file: string, data: Buffer | string): Promise<void> {
  const tmp = tempBeside(file);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function atomicCopy(blobs: BlobStore, digest: Digest, file: string, signal: AbortSignal | undefined): Promise<void> {
  const tmp = tempBeside(file);
  const fh = await open(tmp, "wx");
  try {
    await pipeline(blobs.createReadStream(digest), fh.createWriteStream(), signal ? { signal } : {});
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
