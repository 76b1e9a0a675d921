// Images for outputs and pushes: the store keeps locally built layers as uncompressed tars (digest = diffID,
// as dockerd's image store does); what leaves the machine gets gzip layers, BuildKit's default. The config
// is untouched, so the image ID (config digest) is the same either way; only the manifest changes.
import os from "node:os";
import type { BlobStore } from "@kiln/cache";
import { CompressPool } from "@kiln/snapshot";
import { MediaType, type Descriptor, type Digest, type Manifest } from "../image/oci.js";
import type { ImageArtifact } from "./image-artifact.js";
import { cachedGzip, emptyCompressionStats, gzipBlob, type CompressionStats, type ConversionRecord, type GzipContext } from "./layer-compression.js";

export type { CompressionStats } from "./layer-compression.js";

/** `compression=` of an output (BuildKit's option); "uncompressed" leaves layers as they are in the store. */
export type OutputCompression = "gzip" | "uncompressed";

export const OUTPUT_COMPRESSIONS: readonly OutputCompression[] = ["gzip", "uncompressed"];

/** zlib's default, as BuildKit (Go's gzip.DefaultCompression) and the previous build-time gzip used. */
export const DEFAULT_GZIP_LEVEL = 6;

const DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";
const UNCOMPRESSED_LAYER_TYPES = new Set<string>([MediaType.ociLayer, DOCKER_LAYER_TAR]);

export class CompressionOptionError extends Error {
  override readonly name = "CompressionOptionError";
}

/** Parses a `compression=` value (case-insensitive). */
export function parseOutputCompression(value: string): OutputCompression {
  const v = value.trim().toLowerCase();
  if ((OUTPUT_COMPRESSIONS as readonly string[]).includes(v)) return v as OutputCompression;
  throw new CompressionOptionError(`unsupported compression "${value}" (supported: ${OUTPUT_COMPRESSIONS.join(", ")})`);
}

export interface CompressLayerEvent {
  /** The uncompressed layer and what replaces it. */
  from: Digest;
  to: Descriptor;
  index: number;
  total: number;
}

export interface CompressImageOptions {
  /** Default "gzip". */
  compression?: OutputCompression;
  /** zlib level 0-9 (default 6). Part of the conversion cache's key. */
  level?: number;
  /** Parallel deflates (default: the number of cores). */
  workers?: number;
  signal?: AbortSignal;
  /** Called after each converted layer. */
  onProgress?: (e: CompressLayerEvent) => void;
  /** Makes a blob local before it is read (e.g. a layer known only from an imported cache). */
  ensureBlob?: (digest: Digest) => Promise<void>;
  /** Filled with counters of this call's work (reused vs deflated). */
  stats?: CompressionStats;
  /** A remembered gzip form not in the store counts when this says it can be fetched (imported caches). */
  isAvailable?: (digest: Digest) => Promise<boolean>;
  /**
   * For pushes: a layer not in the store (known from an imported cache) with no known gzip form is left as
   * it is, so the registry can mount it instead of it being downloaded only to be compressed — as BuildKit
   * leaves existing blobs alone unless force-compression is set.
   */
  keepRemoteLayers?: boolean;
}

/** The media type of `mediaType`'s gzip form, or undefined when it is not an uncompressed layer type. */
export function gzipMediaTypeOf(mediaType: string, dockerManifest = false): string | undefined {
  if (!UNCOMPRESSED_LAYER_TYPES.has(mediaType)) return undefined;
  return dockerManifest || mediaType === DOCKER_LAYER_TAR ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}

/**
 * Gzip forms of uncompressed blobs, sharing one deflate pool: for callers converting blobs one by one
 * (cache export) rather than an image.
 */
export class LayerCompressor {
  readonly stats: CompressionStats;
  readonly #ctx: GzipContext;
  readonly #ensureBlob: ((digest: Digest) => Promise<void>) | undefined;

  constructor(readonly store: BlobStore, options: Omit<CompressImageOptions, "compression" | "onProgress"> = {}) {
    const level = options.level ?? DEFAULT_GZIP_LEVEL;
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new CompressionOptionError(`gzip level must be 0-9, got ${level}`);
    const workers = Math.max(1, Math.floor(options.workers ?? os.availableParallelism()));
    this.stats = options.stats ?? emptyCompressionStats();
    this.#ensureBlob = options.ensureBlob;
    this.#ctx = {
      store,
      pool: new CompressPool(workers, level),
      workers,
      stats: this.stats,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.isAvailable ? { isAvailable: options.isAvailable } : {}),
    };
  }

  get level(): number {
    return this.#ctx.pool.level;
  }

  /** The remembered gzip form of `digest`, if any (nothing is made). */
  known(digest: Digest): Promise<ConversionRecord | undefined> {
    return cachedGzip(this.store, digest, this.level, this.#ctx.isAvailable);
  }

  /** The gzip form of the uncompressed blob `digest` (remembered, or made now). */
  async gzip(digest: Digest): Promise<ConversionRecord> {
    const cached = await cachedGzip(this.store, digest, this.level, this.#ctx.isAvailable);
    if (cached) {
      this.stats.layersReused++;
      return cached;
    }
    if (this.#ensureBlob && !(await this.store.has(digest))) await this.#ensureBlob(digest);
    return gzipBlob(this.#ctx, digest);
  }
}

/** Does any layer need converting for `compression`? */
export function needsCompression(image: ImageArtifact, compression: OutputCompression = "gzip"): boolean {
  return compression === "gzip" && image.manifest.layers.some((l) => UNCOMPRESSED_LAYER_TYPES.has(l.mediaType));
}

/**
 * The image with every uncompressed layer replaced by its gzip form (same order, annotations kept), the
 * new manifest stored in `store`; the image itself when nothing needs converting. Base-image layers that
 * are already compressed are left as they came.
 */
export async function compressImageLayers(image: ImageArtifact, store: BlobStore, options: CompressImageOptions = {}): Promise<ImageArtifact> {
  if (!needsCompression(image, options.compression ?? "gzip")) return image;
  const compressor = new LayerCompressor(store, options);
  const dockerManifest = image.manifest.mediaType === MediaType.dockerManifest;
  const layers: Descriptor[] = [];
  for (const [index, layer] of image.manifest.layers.entries()) {
    options.signal?.throwIfAborted();
    const gzipType = gzipMediaTypeOf(layer.mediaType, dockerManifest);
    const remoteOnly = options.keepRemoteLayers === true && !(await store.has(layer.digest)) && !(await compressor.known(layer.digest));
    if (gzipType === undefined || remoteOnly) {
      layers.push(layer);
      continue;
    }
    const gz = await compressor.gzip(layer.digest);
    compressor.stats.layers++;
    const converted: Descriptor = { ...layer, mediaType: gzipType, digest: gz.digest, size: gz.size };
    layers.push(converted);
    options.onProgress?.({ from: layer.digest, to: converted, index, total: image.manifest.layers.length });
  }

  const manifest: Manifest = { ...image.manifest, layers };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const written = await store.writeBytes(manifestBytes);
  return {
    ...image,
    manifestDescriptor: { ...image.manifestDescriptor, digest: written.digest, size: written.size },
    manifest,
    manifestBytes,
  };
}

/**
 * One build's output images by compression, each made at most once however many outputs want it.
 * `digests()` lists every blob made, for a lease.
 */
export class OutputImages {
  readonly #made = new Map<string, Promise<ImageArtifact>>();

  constructor(
    readonly image: ImageArtifact,
    readonly store: BlobStore,
    readonly options: Omit<CompressImageOptions, "compression"> = {},
  ) {}

  /** `push`: the image is for a registry push (see CompressImageOptions.keepRemoteLayers). */
  get(compression: OutputCompression = "gzip", push = false): Promise<ImageArtifact> {
    const key = `${compression}/${push}`;
    let p = this.#made.get(key);
    if (!p) {
      p = compressImageLayers(this.image, this.store, { ...this.options, compression, keepRemoteLayers: push });
      this.#made.set(key, p);
    }
    return p;
  }
}

/** The blobs an output image adds to the store (its manifest and converted layers). */
export function addedBlobs(original: ImageArtifact, output: ImageArtifact): Digest[] {
  if (original === output) return [];
  const before = new Set(original.manifest.layers.map((l) => l.digest));
  return [output.manifestDescriptor.digest, ...output.manifest.layers.map((l) => l.digest).filter((d) => !before.has(d))];
}
