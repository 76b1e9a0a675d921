// `--cache-from`: registers another host's cache records in the local CacheIndex as "lazy" records. Their
// layer blobs are not downloaded: the RemoteBlobIndex remembers where each lives, and LazyBlobFetcher
// fetches one when something needs its bytes.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Lease, RemoteBlobIndex, computeDigest, isDigest, type RemoteBlobSource } from "@kiln/cache";
import type { Descriptor, Digest, ImageIndex, Manifest } from "../image/oci.js";
import { parseReference, type ImageReference } from "../image/reference.js";
import { RegistryClient } from "../registry/client.js";
import { RegistryError } from "../registry/errors.js";
import { fetchBlobToStore } from "../registry/pull.js";
import { REF_NAME_ANNOTATION } from "../output/oci-layout.js";
import type { CacheStores } from "./export.js";
import { MediaType } from "../image/oci.js";
import { DEFAULT_GZIP_LEVEL } from "../output/compress-image.js";
import { rememberGzip } from "../output/layer-compression.js";
import {
  CacheFormatError,
  FILES_INDEX_MEDIA_TYPE,
  LOCAL_CACHE_REF_NAME,
  UNCOMPRESSED_ANNOTATION,
  UNCOMPRESSED_SIZE_ANNOTATION,
  parseCacheConfig,
  parseCacheManifest,
  type CacheConfig,
} from "./format.js";
import { LazyBlobFetcher, type LazySource } from "./lazy-fetcher.js";
import type { CacheFromSpec } from "./spec.js";

/** The cache named by --cache-from does not exist (BuildKit warns and builds without it). */
export class CacheNotFoundError extends Error {
  override readonly name = "CacheNotFoundError";
}

export interface ImportCacheOptions {
  client?: RegistryClient;
  signal?: AbortSignal;
  /** The build's lease; without one the import takes its own (so a concurrent GC keeps what it registers). */
  lease?: Lease;
}

export interface ImportCacheResult {
  /** Keys of every record in the imported cache. */
  keys: Digest[];
  /** Records added to the local index. */
  imported: number;
  /** Records the local index already had (with their blobs available). */
  present: number;
  /** Blobs registered as lazy (not downloaded). */
  lazyBlobs: number;
  /** Small non-layer blobs (COPY file lists) downloaded now. */
  fetchedBlobs: number;
}

interface LoadedCache {
  config: CacheConfig;
  blobs: Descriptor[];
  sourceFor(desc: Descriptor): RemoteBlobSource;
}

/** How the registry repository of a cache is written in RemoteBlobSource.location: "host/path". */
function repoLocation(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

async function loadRegistryCache(stores: CacheStores, refText: string, client: RegistryClient, signal: AbortSignal | undefined): Promise<LoadedCache> {
  const ref = parseReference(refText);
  let manifestBytes: Buffer;
  try {
    manifestBytes = (await client.fetchManifest(ref, ref.digest ?? ref.tag ?? "latest", signal)).bytes;
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) throw new CacheNotFoundError(`cache ${refText} not found`, { cause: err });
    throw err;
  }
  if (ref.digest && computeDigest(manifestBytes) !== ref.digest) throw new CacheFormatError(`${refText}: manifest digest mismatch`);
  const manifest = parseCacheManifest(manifestBytes, refText);
  // Verified on its way into the store; GC drops it later (nothing references it).
  await fetchBlobToStore(client, ref, manifest.config, stores.blobs, signal, undefined);
  const config = parseCacheConfig(await stores.blobs.readBytes(manifest.config.digest), refText);
  const location = repoLocation(ref);
  return { config, blobs: manifest.layers, sourceFor: (d) => ({ kind: "registry", location, size: d.size, mediaType: d.mediaType }) };
}

async function readVerified(file: string, digest: Digest, where: string): Promise<Buffer> {
  const bytes = await readFile(file);
  if (computeDigest(bytes) !== digest) throw new CacheFormatError(`${where}: blob ${digest} does not match its digest`);
  return bytes;
}

async function loadLocalCache(dir: string): Promise<LoadedCache> {
  const src = path.resolve(dir);
  let index: ImageIndex;
  try {
    index = JSON.parse(await readFile(path.join(src, "index.json"), "utf8")) as ImageIndex;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new CacheNotFoundError(`no cache at ${src} (index.json missing)`, { cause: err });
    throw new CacheFormatError(`${src}/index.json is not valid JSON`, { cause: err });
  }
  const entry = index.manifests?.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === LOCAL_CACHE_REF_NAME) ?? index.manifests?.[0];
  if (!entry) throw new CacheNotFoundError(`no cache manifest in ${src}/index.json`);
  const blobPath = (d: Digest) => path.join(src, "blobs", "sha256", d.slice("sha256:".length));
  const manifest: Manifest = parseCacheManifest(await readVerified(blobPath(entry.digest), entry.digest, src), src);
  const config = parseCacheConfig(await readVerified(blobPath(manifest.config.digest), manifest.config.digest, src), src);
  return { config, blobs: manifest.layers, sourceFor: (d) => ({ kind: "local", location: src, size: d.size, mediaType: d.mediaType }) };
}

export async function importCache(stores: CacheStores, spec: CacheFromSpec, options: ImportCacheOptions = {}): Promise<ImportCacheResult> {
  const client = options.client ?? new RegistryClient();
  const lease = options.lease ?? (await Lease.acquire(stores.blobs, options.signal ? { signal: options.signal } : {}));
  try {
    return await importLeased(stores, spec, client, lease, options.signal);
  } finally {
    if (!options.lease) await lease.release();
  }
}

async function importLeased(stores: CacheStores, spec: CacheFromSpec, client: RegistryClient, lease: Lease, signal: AbortSignal | undefined): Promise<ImportCacheResult> {
  const loaded = spec.type === "local" ? await loadLocalCache(spec.src) : await loadRegistryCache(stores, spec.ref, client, signal);
  const remote = await RemoteBlobIndex.open(stores.blobs);
  const fetcher = await LazyBlobFetcher.open(stores.blobs, { client });
  const descs = new Map(loaded.blobs.map((d) => [d.digest, d]));
  // Gzip layer blobs stand for the uncompressed digests the records name.
  const gzipped = new Map<Digest, { desc: Descriptor; size: number }>();
  for (const d of loaded.blobs) {
    const raw = d.annotations?.[UNCOMPRESSED_ANNOTATION];
    const size = Number(d.annotations?.[UNCOMPRESSED_SIZE_ANNOTATION]);
    if (isDigest(raw) && Number.isSafeInteger(size) && size >= 0) gzipped.set(raw, { desc: d, size });
  }
  const result: ImportCacheResult = { keys: [], imported: 0, present: 0, lazyBlobs: 0, fetchedBlobs: 0 };
  const registered = new Set<Digest>();

  for (const rec of loaded.config.records) {
    signal?.throwIfAborted();
    result.keys.push(rec.key);
    const existing = await stores.cache.get(rec.key);
    if (existing && (await allAvailable(remote, existing.blobs))) {
      result.present++;
      continue;
    }
    const inputs = { ...rec.inputs };
    // A files index only explains misses: a cache that does not carry it still gives a usable record.
    if (typeof inputs.filesIndex === "string" && !descs.has(inputs.filesIndex as Digest) && !(await stores.blobs.has(inputs.filesIndex as Digest))) delete inputs.filesIndex;
    const needed = [...rec.blobs, ...(typeof inputs.filesIndex === "string" ? [inputs.filesIndex as Digest] : [])];
    let complete = true;
    for (const d of needed) {
      if (registered.has(d) || (await stores.blobs.has(d))) continue;
      const gz = descs.has(d) ? undefined : gzipped.get(d);
      if (gz) {
        // The gzip blob is lazy itself (pushes mount it, outputs fetch it); the uncompressed one is made
        // from it when its bytes are needed, and is known to have this gzip form.
        await lease.add([d, gz.desc.digest]);
        if (!(await stores.blobs.has(gz.desc.digest))) await remote.put(gz.desc.digest, loaded.sourceFor(gz.desc));
        const source: LazySource = { ...loaded.sourceFor(gz.desc), size: gz.size, mediaType: MediaType.ociLayer, compressed: gz.desc.digest, compressedSize: gz.desc.size };
        await remote.put(d, source);
        await rememberGzip(stores.blobs, d, DEFAULT_GZIP_LEVEL, { digest: gz.desc.digest, size: gz.desc.size });
        registered.add(d);
        result.lazyBlobs++;
        continue;
      }
      const desc = descs.get(d);
      if (!desc) {
        complete = false;
        break;
      }
      // Lease and source first, record after: a crash in between leaves an unreferenced source (GC drops
      // it), never a record whose blob nobody can find; the lease keeps GC off it until the record exists.
      await lease.add([d]);
      await remote.put(d, loaded.sourceFor(desc));
      registered.add(d);
      if (desc.mediaType === FILES_INDEX_MEDIA_TYPE) {
        await fetcher.ensureBlob(d, signal);
        result.fetchedBlobs++;
      } else result.lazyBlobs++;
    }
    if (!complete) continue; // the cache names a layer it does not carry: unusable record
    await stores.cache.put({ key: rec.key, parent: rec.parent, inputs, result: rec.result, blobs: rec.blobs });
    result.imported++;
  }
  return result;
}

async function allAvailable(remote: RemoteBlobIndex, digests: Digest[]): Promise<boolean> {
  for (const d of digests) if (!(await remote.isAvailable(d))) return false;
  return true;
}

