// Pulling an image: resolve a reference (through an index to one platform), then stream config and
// layers into the BlobStore, each verified against its digest before it becomes visible.
import type { BlobStore } from "@kiln/cache";
import type { Descriptor, Digest, ImageConfig, ImageIndex, Manifest, Platform } from "../image/oci.js";
import { hostPlatform } from "../image/oci.js";
import { formatReference, parseReference, type ImageReference } from "../image/reference.js";
import type { ImageArtifact } from "../output/image-artifact.js";
import { RegistryClient } from "./client.js";
import { ManifestError, PlatformNotFoundError } from "./errors.js";
import { parseManifest, type ParsedManifest } from "./manifest.js";
import { selectManifest } from "./platform.js";
import { progressTap, type ProgressCallback } from "./progress.js";
import { mapBounded, withRetry } from "./retry.js";

export interface ResolveOptions {
  /** Default: the host platform (arm64 hosts ask for arm64/v8). */
  platform?: Platform;
  signal?: AbortSignal;
  client?: RegistryClient;
  onProgress?: ProgressCallback;
  /** Manifests named by digest that this store holds are read from it instead of the registry. */
  store?: BlobStore;
}

export interface ResolvedImage {
  reference: ImageReference;
  /** Descriptor of the platform manifest (its digest is the image's "manifest digest"). */
  manifestDescriptor: Descriptor;
  manifestDigest: Digest;
  manifest: Manifest;
  manifestBytes: Buffer;
  config: Descriptor;
  /** The index the manifest was chosen from, when the reference named one. */
  index?: { descriptor: Descriptor; index: ImageIndex; bytes: Buffer };
}

export interface PullOptions extends ResolveOptions {}

/** A pulled image: what the build engine and output writers take, plus where it came from. */
export interface PulledImage extends ImageArtifact {
  reference: ImageReference;
  index?: ResolvedImage["index"];
}

/** Nested indexes are legal but rare; bound the walk so a cyclic one cannot loop. */
const MAX_INDEX_DEPTH = 4;

function toRef(ref: string | ImageReference): ImageReference {
  return typeof ref === "string" ? parseReference(ref) : ref;
}

async function fetchParsed(
  client: RegistryClient,
  ref: ImageReference,
  target: string,
  expectedDigest: Digest | undefined,
  options: ResolveOptions,
  mediaTypeHint?: string,
): Promise<ParsedManifest> {
  const { signal, store } = options;
  const name = `${ref.domain}/${ref.path}${target.startsWith("sha256:") ? "@" : ":"}${target}`;
  if (expectedDigest !== undefined && store && (await store.has(expectedDigest))) {
    // Content-addressed, so a stored copy is as good as the registry's (and is re-verified here).
    return parseManifest(name, await store.readBytes(expectedDigest), mediaTypeHint, expectedDigest);
  }
  const got = await withRetry(() => client.fetchManifest(ref, target, signal), client.retry, signal);
  const parsed = parseManifest(name, got.bytes, got.contentType, expectedDigest);
  // By tag, the registry's Docker-Content-Digest is the only other witness of what it meant to send.
  if (expectedDigest === undefined && got.headerDigest !== undefined && got.headerDigest !== parsed.digest) {
    throw new ManifestError(name, `content digest ${parsed.digest} does not match Docker-Content-Digest ${got.headerDigest}`);
  }
  return parsed;
}

/** Resolves a reference to one platform's manifest and config descriptor (manifests only, no blobs). */
export async function resolveImage(input: string | ImageReference, options: ResolveOptions = {}): Promise<ResolvedImage> {
  const client = options.client ?? new RegistryClient();
  const ref = toRef(input);
  const platform = options.platform ?? hostPlatform();
  const target = ref.digest ?? ref.tag ?? "latest";
  let parsed = await fetchParsed(client, ref, target, ref.digest, options);
  let index: ResolvedImage["index"];
  let descriptor: Descriptor = { mediaType: parsed.mediaType, digest: parsed.digest, size: parsed.bytes.length };
  for (let depth = 0; parsed.kind === "index"; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new ManifestError(formatReference(ref), "indexes nested too deeply");
    index ??= { descriptor, index: parsed.index, bytes: parsed.bytes };
    const chosen = selectManifest(parsed.index.manifests, platform);
    if (!chosen) {
      const available = parsed.index.manifests.flatMap((m) => (m.platform ? [m.platform] : []));
      throw new PlatformNotFoundError(formatReference(ref), platform, available);
    }
    parsed = await fetchParsed(client, ref, chosen.digest, chosen.digest, options, chosen.mediaType);
    descriptor = { ...chosen, mediaType: parsed.mediaType };
  }
  options.onProgress?.({ type: "resolved", reference: formatReference(ref), digest: parsed.digest, mediaType: parsed.mediaType });
  return {
    reference: ref,
    manifestDescriptor: descriptor,
    manifestDigest: parsed.digest,
    manifest: parsed.manifest,
    manifestBytes: parsed.bytes,
    config: parsed.manifest.config,
    ...(index ? { index } : {}),
  };
}

/** Downloads one blob into the store unless it is there already; restarts from scratch on transient errors. */
export async function fetchBlobToStore(
  client: RegistryClient,
  repo: ImageReference,
  desc: Descriptor,
  store: BlobStore,
  signal: AbortSignal | undefined,
  onProgress: ProgressCallback | undefined,
): Promise<void> {
  if (await store.has(desc.digest)) {
    onProgress?.({ type: "exists", digest: desc.digest, size: desc.size });
    return;
  }
  onProgress?.({ type: "start", digest: desc.digest, size: desc.size });
  await withRetry(
    async () => {
      const { body } = await client.openBlob(repo, desc.digest, signal);
      const tap = progressTap(desc, onProgress);
      body.on("error", (err) => tap.destroy(err));
      // A failed ingest destroys the tap; drop the connection too instead of reading the rest.
      tap.on("close", () => body.destroy());
      await store.writeStream(body.pipe(tap), { expected: desc.digest, expectedSize: desc.size, ...(signal ? { signal } : {}) });
    },
    client.retry,
    signal,
    (attempt, delayMs, error) => onProgress?.({ type: "retry", digest: desc.digest, attempt, delayMs, error }),
  );
  onProgress?.({ type: "done", digest: desc.digest, size: desc.size });
}

/**
 * Pulls an image into `store`: the index (if any), the platform manifest, the config and every layer.
 * Blobs already in the store are not fetched. Nothing unverified ever lands in the store.
 */
export async function pullImage(input: string | ImageReference, store: BlobStore, options: PullOptions = {}): Promise<PulledImage> {
  const client = options.client ?? new RegistryClient();
  const resolved = await resolveImage(input, { ...options, client, store });
  const { manifest, reference } = resolved;
  const blobs = dedupe([manifest.config, ...manifest.layers]).filter((d) => !(d.urls && d.urls.length > 0 && isForeign(d)));
  await mapBounded(blobs, client.concurrency, options.signal, (d, signal) => fetchBlobToStore(client, reference, d, store, signal, options.onProgress));
  const configBytes = await store.readBytes(manifest.config.digest);
  let config: ImageConfig;
  try {
    config = JSON.parse(configBytes.toString("utf8")) as ImageConfig;
  } catch (err) {
    throw new ManifestError(formatReference(reference), `config ${manifest.config.digest} is not valid JSON`, { cause: err });
  }
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
    throw new ManifestError(formatReference(reference), `config lists ${Array.isArray(diffIds) ? diffIds.length : "no"} diff_ids for ${manifest.layers.length} layers`);
  }
  // Manifests last: their presence in the store then means the whole image is there.
  if (resolved.index) await store.writeBytes(resolved.index.bytes, resolved.index.descriptor.digest);
  await store.writeBytes(resolved.manifestBytes, resolved.manifestDigest);
  return {
    reference,
    manifestDescriptor: resolved.manifestDescriptor,
    manifest,
    manifestBytes: resolved.manifestBytes,
    config,
    configBytes,
    ...(resolved.index ? { index: resolved.index } : {}),
  };
}

function dedupe(descs: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descs.filter((d) => (seen.has(d.digest) ? false : (seen.add(d.digest), true)));
}

/** Windows foreign layers live at their `urls`, not in the registry; Linux builds never need them. */
function isForeign(d: Descriptor): boolean {
  return d.mediaType.includes("foreign") || d.mediaType.includes("nondistributable");
}
