// Fetching the bytes of "lazy" blobs (imported cache records' layers) only when something needs them.
import { createReadStream } from "node:fs";
import { PassThrough, pipeline as pipelineStreams } from "node:stream";
import path from "node:path";
import { createGunzip } from "node:zlib";
import { RemoteBlobIndex, isDigest, type BlobStore, type RemoteBlobSource } from "@kiln/cache";
import { MediaType, type Descriptor, type Digest } from "../image/oci.js";
import { parseReference } from "../image/reference.js";
import { RegistryClient } from "../registry/client.js";
import { fetchBlobToStore } from "../registry/pull.js";
import type { ProgressCallback } from "../registry/progress.js";
import type { MountHint, PushBlobSource } from "../registry/push.js";

export class LazyBlobUnavailableError extends Error {
  override readonly name = "LazyBlobUnavailableError";
  constructor(readonly digest: Digest, options?: ErrorOptions) {
    super(`blob ${digest} is neither in the store nor at a known cache source`, options);
  }
}

/**
 * A lazy blob's source. With `compressed`, the blob is the decompressed bytes of that gzip blob, which
 * lives at the same location (so it can be fetched even after GC dropped its own remote entry).
 */
export type LazySource = RemoteBlobSource & { compressed?: Digest; compressedSize?: number };

export interface LazyBlobFetcherOptions {
  client?: RegistryClient;
  onProgress?: ProgressCallback;
}

/**
 * The `ensureBlob(digest)` hook: a no-op for blobs in the store, else a verified download from where the
 * import said the blob lives (a local cache directory or a registry repository). Concurrent calls for one
 * digest share one download.
 */
export class LazyBlobFetcher {
  /** Digests downloaded by this fetcher, in order (for progress and tests). */
  readonly fetched: Digest[] = [];
  readonly #blobs: BlobStore;
  readonly #remote: RemoteBlobIndex;
  readonly #client: RegistryClient;
  readonly #onProgress: ProgressCallback | undefined;
  readonly #inFlight = new Map<Digest, Promise<void>>();
  /** Registry sources by digest, loaded at open()/refresh(): mount hints must answer synchronously. */
  #registrySources = new Map<Digest, string>();

  private constructor(blobs: BlobStore, remote: RemoteBlobIndex, options: LazyBlobFetcherOptions) {
    this.#blobs = blobs;
    this.#remote = remote;
    this.#client = options.client ?? new RegistryClient();
    this.#onProgress = options.onProgress;
  }

  static async open(blobs: BlobStore, options: LazyBlobFetcherOptions = {}): Promise<LazyBlobFetcher> {
    const f = new LazyBlobFetcher(blobs, await RemoteBlobIndex.open(blobs), options);
    await f.refresh();
    return f;
  }

  get fetchCount(): number {
    return this.fetched.length;
  }

  /** Re-reads the known sources (after another import). */
  async refresh(): Promise<void> {
    const map = new Map<Digest, string>();
    for await (const { digest, source } of this.#remote.list()) {
      // A blob made by decompressing another is not in the registry repository, so it cannot be mounted.
      if (source.kind === "registry" && (source as LazySource).compressed === undefined) map.set(digest, source.location);
    }
    this.#registrySources = map;
  }

  /** In the store, or fetchable. Use it where the engine now checks `blobs.has()` for a cached layer. */
  isAvailable(digest: Digest): Promise<boolean> {
    return this.#remote.isAvailable(digest);
  }

  source(digest: Digest): Promise<RemoteBlobSource | undefined> {
    return this.#remote.get(digest);
  }

  async ensureBlob(digest: Digest, signal?: AbortSignal): Promise<void> {
    if (await this.#blobs.has(digest)) return;
    let p = this.#inFlight.get(digest);
    if (!p) {
      p = this.#fetch(digest, signal).finally(() => this.#inFlight.delete(digest));
      this.#inFlight.set(digest, p);
    }
    await p;
  }

  async ensureBlobs(digests: Iterable<Digest>, signal?: AbortSignal): Promise<void> {
    for (const d of new Set(digests)) await this.ensureBlob(d, signal);
  }

  /** For pushImage's `mountFrom`: lazy blobs living in a registry repository are mounted from it. */
  readonly mountHint: MountHint = (blob: Descriptor) => this.#registrySources.get(blob.digest);

  /**
   * For pushImage's blob source: local blobs are read from the store; lazy ones are fetched first, which
   * only happens when the target registry has neither the blob nor a mountable copy.
   */
  pushSource(signal?: AbortSignal): PushBlobSource {
    return {
      createReadStream: (digest, options = {}) => {
        const out = new PassThrough();
        this.ensureBlob(digest, signal).then(
          () => {
            const src = this.#blobs.createReadStream(digest, options);
            src.on("error", (err) => out.destroy(err));
            src.pipe(out);
          },
          (err: Error) => out.destroy(err),
        );
        return out;
      },
    };
  }

  /** A blob reader (for ImageFsView, layer extraction, outputs) that fetches lazy blobs before reading them. */
  blobReader(signal?: AbortSignal): PushBlobSource {
    return this.pushSource(signal);
  }

  async #fetch(digest: Digest, signal: AbortSignal | undefined): Promise<void> {
    const source: LazySource | undefined = await this.#remote.get(digest);
    if (!source) throw new LazyBlobUnavailableError(digest);
    try {
      const gz = source.compressed;
      if (isDigest(gz) && Number.isSafeInteger(source.compressedSize)) {
        if (!(await this.#blobs.has(gz))) {
          await this.#download(gz, { ...source, size: source.compressedSize as number, mediaType: MediaType.ociLayerGzip }, signal);
        }
        // pipeline() (callback form) returns the gunzip stream and destroys it if the read fails.
        const plain = pipelineStreams(this.#blobs.createReadStream(gz), createGunzip(), () => undefined);
        await this.#blobs.writeStream(plain, { expected: digest, expectedSize: source.size, ...(signal ? { signal } : {}) });
      } else await this.#download(digest, source, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new LazyBlobUnavailableError(digest, { cause: err });
    }
    this.fetched.push(digest);
  }

  async #download(digest: Digest, source: RemoteBlobSource, signal: AbortSignal | undefined): Promise<void> {
    if (source.kind === "registry") {
      const desc: Descriptor = { mediaType: source.mediaType, digest, size: source.size };
      await fetchBlobToStore(this.#client, parseReference(source.location), desc, this.#blobs, signal, this.#onProgress);
    } else {
      const file = path.join(source.location, "blobs", "sha256", digest.slice("sha256:".length));
      await this.#blobs.writeStream(createReadStream(file), { expected: digest, expectedSize: source.size, ...(signal ? { signal } : {}) });
    }
  }
}
