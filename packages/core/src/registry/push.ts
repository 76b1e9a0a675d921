// Pushing an image: every blob the registry lacks (HEAD first, cross-repository mount when a source
// repository is known, else a monolithic or chunked upload), then the manifest under each tag.
import { Readable } from "node:stream";
import { computeDigest } from "@kiln/cache";
import type { Descriptor, Digest } from "../image/oci.js";
import { formatReference, parseReference, type ImageReference } from "../image/reference.js";
import type { ImageArtifact } from "../output/image-artifact.js";
import { RegistryClient, type RepositoryRef } from "./client.js";
import { ManifestError, RegistryError } from "./errors.js";
import { progressTap, type ProgressCallback } from "./progress.js";
import { repositoryScope } from "./auth.js";
import { mapBounded, withRetry } from "./retry.js";
import { drain } from "./transport.js";

/** Where push reads blobs from; BlobStore satisfies it (ranges are needed for chunked uploads). */
export interface PushBlobSource {
  createReadStream(digest: Digest, options?: { start?: number; end?: number }): NodeJS.ReadableStream;
}

/** For a blob, the repository (path on the same registry, or a full name) it may be mounted from. */
export type MountHint = string | ((blob: Descriptor) => string | undefined);

export interface PushOptions {
  client?: RegistryClient;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** More tags to point at the same manifest (the reference's own tag is always pushed). */
  tags?: string[];
  mountFrom?: MountHint;
  /** Blobs up to this size go in one PUT; bigger ones as PATCH chunks of `chunkSize`. Default 16 MiB. */
  monolithicThreshold?: number;
  chunkSize?: number;
  /** Parallel blob uploads (default 5, as dockerd). */
  concurrency?: number;
}

export interface PushResult {
  reference: ImageReference;
  digest: Digest;
  size: number;
  /** Blob digests by what happened to them. */
  uploaded: Digest[];
  mounted: Digest[];
  skipped: Digest[];
}

const DEFAULT_CHUNK = 16 * 1024 * 1024;
const PUSH_CONCURRENCY = 5;

function mountSource(hint: MountHint | undefined, blob: Descriptor, target: RepositoryRef): string | undefined {
  const raw = typeof hint === "function" ? hint(blob) : hint;
  if (!raw) return undefined;
  let repoPath = raw;
  const first = raw.split("/")[0] ?? "";
  // A full name (first component looks like a host, as parseReference decides) or a bare repository path.
  if (raw.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) {
    const ref = parseReference(raw);
    if (ref.domain !== target.domain) return undefined; // mounts only work within one registry
    repoPath = ref.path;
  }
  return repoPath === target.path ? undefined : repoPath;
}

function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  return url;
}

function locationOf(res: { headers: Record<string, string | string[] | undefined>; url: URL }): URL {
  const loc = res.headers.location;
  const value = Array.isArray(loc) ? loc[0] : loc;
  if (!value) throw new RegistryError(202, "POST", res.url.href, [{ code: "NO_LOCATION", message: "upload response without Location" }]);
  return new URL(value, res.url);
}

type BlobBody = { size: number; open: (start?: number, end?: number) => Readable };

/** Uploads one blob that the registry does not have: mount, or POST then PUT / PATCH…PUT. */
async function uploadBlob(
  client: RegistryClient,
  repo: RepositoryRef,
  desc: Descriptor,
  blob: BlobBody,
  from: string | undefined,
  options: PushOptions,
  signal: AbortSignal,
): Promise<"mounted" | "uploaded"> {
  const threshold = options.monolithicThreshold ?? DEFAULT_CHUNK;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  const start = await client.request(repo, {
    method: "POST",
    target: from ? `blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}` : "blobs/uploads/",
    push: true,
    ...(from ? { scopes: [repositoryScope(from, false)] } : {}),
    headers: { "content-length": "0" },
    expect: [201, 202],
    signal,
  });
  await drain(start.body);
  if (start.status === 201) return "mounted";
  let location = locationOf(start);
  options.onProgress?.({ type: "start", digest: desc.digest, size: desc.size });
  if (blob.size <= threshold) {
    const res = await client.request(repo, {
      method: "PUT",
      target: withDigest(location, desc.digest),
      headers: { "content-type": "application/octet-stream", "content-length": String(blob.size) },
      body: () => {
        const src = blob.open();
        const tap = progressTap(desc, options.onProgress);
        src.on("error", (err) => tap.destroy(err));
        return src.pipe(tap);
      },
      push: true,
      expect: [201],
      signal,
    });
    await drain(res.body);
  } else {
    for (let offset = 0; offset < blob.size; offset += chunkSize) {
      const end = Math.min(blob.size, offset + chunkSize) - 1;
      const res = await client.request(repo, {
        method: "PATCH",
        target: location,
        headers: { "content-type": "application/octet-stream", "content-length": String(end - offset + 1), "content-range": `${offset}-${end}` },
        body: () => blob.open(offset, end),
        push: true,
        expect: [202],
        signal,
      });
      await drain(res.body);
      location = locationOf(res);
      options.onProgress?.({ type: "progress", digest: desc.digest, current: end + 1, total: blob.size });
    }
    const res = await client.request(repo, {
      method: "PUT",
      target: withDigest(location, desc.digest),
      headers: { "content-length": "0" },
      push: true,
      expect: [201],
      signal,
    });
    await drain(res.body);
  }
  return "uploaded";
}

/**
 * Pushes `image` to `ref`. Blobs the registry already has are skipped after a HEAD, so re-running a
 * push that failed half-way uploads only what is missing.
 */
export async function pushImage(image: ImageArtifact, blobs: PushBlobSource, refInput: string | ImageReference, options: PushOptions = {}): Promise<PushResult> {
  const client = options.client ?? new RegistryClient();
  const ref = typeof refInput === "string" ? parseReference(refInput) : refInput;
  const result: PushResult = { reference: ref, digest: image.manifestDescriptor.digest, size: image.manifestBytes.length, uploaded: [], mounted: [], skipped: [] };
  const seen = new Set<string>();
  const descs = [image.manifest.config, ...image.manifest.layers].filter((d) => (seen.has(d.digest) ? false : (seen.add(d.digest), true)));

  await mapBounded(descs, options.concurrency ?? PUSH_CONCURRENCY, options.signal, async (desc, signal) => {
    const isConfig = desc.digest === image.manifest.config.digest;
    const body: BlobBody = isConfig
      ? { size: image.configBytes.length, open: () => Readable.from([image.configBytes]) }
      : { size: desc.size, open: (start, end) => toReadable(blobs.createReadStream(desc.digest, start === undefined ? {} : { start, ...(end !== undefined ? { end } : {}) })) };
    const outcome = await withRetry(
      async () => {
        if ((await client.headBlob(ref, desc.digest, signal, true)) !== undefined) return "skipped" as const;
        return uploadBlob(client, ref, desc, body, mountSource(options.mountFrom, desc, ref), options, signal);
      },
      client.retry,
      signal,
      (attempt, delayMs, error) => options.onProgress?.({ type: "retry", digest: desc.digest, attempt, delayMs, error }),
    );
    if (outcome === "skipped") {
      result.skipped.push(desc.digest);
      options.onProgress?.({ type: "exists", digest: desc.digest, size: desc.size });
    } else if (outcome === "mounted") {
      result.mounted.push(desc.digest);
      options.onProgress?.({ type: "mounted", digest: desc.digest, size: desc.size, from: mountSource(options.mountFrom, desc, ref) ?? "" });
    } else {
      result.uploaded.push(desc.digest);
      options.onProgress?.({ type: "done", digest: desc.digest, size: desc.size });
    }
  });

  const tags = [...new Set([...(ref.tag !== undefined ? [ref.tag] : []), ...(options.tags ?? [])])];
  const targets = tags.length > 0 ? tags : [image.manifestDescriptor.digest];
  for (const tag of targets) {
    const reported = await withRetry(
      () => client.putManifest(ref, tag, image.manifestBytes, image.manifestDescriptor.mediaType, options.signal),
      client.retry,
      options.signal,
    );
    if (reported !== undefined && reported !== image.manifestDescriptor.digest) {
      throw new ManifestError(formatReference(ref), `registry stored the manifest as ${reported}, expected ${image.manifestDescriptor.digest}`);
    }
  }
  return result;
}

/** Pushes a manifest or index whose blobs/children are already in the repository (e.g. a multi-platform index). */
export async function pushManifest(
  refInput: string | ImageReference,
  bytes: Buffer,
  mediaType: string,
  options: { client?: RegistryClient; signal?: AbortSignal; tags?: string[] } = {},
): Promise<Digest> {
  const client = options.client ?? new RegistryClient();
  const ref = typeof refInput === "string" ? parseReference(refInput) : refInput;
  const digest = computeDigest(bytes);
  const tags = [...new Set([...(ref.tag !== undefined ? [ref.tag] : []), ...(options.tags ?? [])])];
  for (const tag of tags.length ? tags : [digest]) {
    await withRetry(() => client.putManifest(ref, tag, bytes, mediaType, options.signal), client.retry, options.signal);
  }
  return digest;
}

function toReadable(stream: NodeJS.ReadableStream): Readable {
  return stream instanceof Readable ? stream : Readable.from(stream as AsyncIterable<Buffer>);
}

