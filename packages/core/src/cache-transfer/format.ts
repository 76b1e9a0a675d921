// The exported cache as an OCI artifact: an image manifest whose config blob holds the cache records (key,
// parent, inputs, result, blobs) and whose layers are every blob those records reference, so a plain
// distribution registry keeps the blobs alive and can cross-repository mount them.
import { isDigest, type CacheKeyInputs } from "@kiln/cache";
import type { Descriptor, Digest, Manifest } from "../image/oci.js";
import { MediaType } from "../image/oci.js";

export const CACHE_ARTIFACT_TYPE = "application/vnd.kiln.cache.v1";
export const CACHE_CONFIG_MEDIA_TYPE = "application/vnd.kiln.cache.config.v1+json";
/** Media type of a COPY's per-file digest list (small JSON; imported eagerly, it explains misses). */
export const FILES_INDEX_MEDIA_TYPE = "application/vnd.kiln.cache.files.v1+json";
/**
 * On a cache's gzip layer blob: the uncompressed blob the records name (containerd's annotation for a
 * compressed blob's diffID) and its size, so an import can register the uncompressed digest as lazy.
 */
export const UNCOMPRESSED_ANNOTATION = "containerd.io/uncompressed";
export const UNCOMPRESSED_SIZE_ANNOTATION = "io.kiln.uncompressed.size";
/** The tag-like name of the cache manifest in a local cache directory's index.json. */
export const LOCAL_CACHE_REF_NAME = "kiln-cache";

export interface ExportedRecord {
  key: Digest;
  parent: Digest | null;
  inputs: CacheKeyInputs;
  result: unknown;
  blobs: Digest[];
  createdAt: string;
}

export interface CacheConfig {
  version: 1;
  mode: "min" | "max";
  records: ExportedRecord[];
}

export class CacheFormatError extends Error {
  override readonly name = "CacheFormatError";
}

export function cacheManifest(config: Descriptor, blobs: Descriptor[]): Manifest & { artifactType: string } {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: CACHE_ARTIFACT_TYPE,
    config,
    layers: blobs,
  };
}

/** Validates a cache manifest; throws CacheFormatError when it is not one. */
export function parseCacheManifest(bytes: Buffer, where: string): Manifest {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new CacheFormatError(`${where}: cache manifest is not JSON`, { cause: err });
  }
  const m = v as Partial<Manifest>;
  if (m.config?.mediaType !== CACHE_CONFIG_MEDIA_TYPE || !isDigest(m.config.digest) || !Array.isArray(m.layers)) {
    throw new CacheFormatError(`${where} is not a kiln cache (config media type ${JSON.stringify(m.config?.mediaType)})`);
  }
  for (const l of m.layers) {
    if (!isDigest(l.digest) || !Number.isSafeInteger(l.size) || typeof l.mediaType !== "string") throw new CacheFormatError(`${where}: invalid blob descriptor in cache manifest`);
  }
  return m as Manifest;
}

export function parseCacheConfig(bytes: Buffer, where: string): CacheConfig {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new CacheFormatError(`${where}: cache config is not JSON`, { cause: err });
  }
  const c = v as Partial<CacheConfig>;
  if (c.version !== 1 || !Array.isArray(c.records)) throw new CacheFormatError(`${where}: unsupported cache config version ${JSON.stringify(c.version)}`);
  for (const r of c.records) {
    const ok = isDigest(r.key) && (r.parent === null || isDigest(r.parent)) && typeof r.inputs === "object" && r.inputs !== null && typeof r.inputs.instruction === "string" && Array.isArray(r.blobs) && r.blobs.every(isDigest);
    if (!ok) throw new CacheFormatError(`${where}: invalid record in cache config`);
  }
  return c as CacheConfig;
}
