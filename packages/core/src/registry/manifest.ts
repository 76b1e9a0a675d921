// Validation of manifests and indexes received from a registry: JSON shape, media type and digest.
import { DigestMismatchError, computeDigest, isDigest } from "@kiln/cache";
import type { Descriptor, Digest, ImageIndex, Manifest } from "../image/oci.js";
import { MediaType, isIndexMediaType, isManifestMediaType } from "../image/oci.js";
import { ManifestError } from "./errors.js";

export type ParsedManifest =
  | { kind: "index"; mediaType: string; digest: Digest; bytes: Buffer; index: ImageIndex }
  | { kind: "manifest"; mediaType: string; digest: Digest; bytes: Buffer; manifest: Manifest };

const SCHEMA1_TYPES = new Set([
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
]);

function checkDescriptor(reference: string, where: string, d: unknown): Descriptor {
  const desc = d as Partial<Descriptor> | null;
  if (typeof desc !== "object" || desc === null) throw new ManifestError(reference, `${where} is not a descriptor`);
  if (!isDigest(desc.digest)) throw new ManifestError(reference, `${where} has an invalid or unsupported digest ${JSON.stringify(desc.digest)}`);
  if (typeof desc.size !== "number" || !Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw new ManifestError(reference, `${where} has an invalid size`);
  }
  if (typeof desc.mediaType !== "string") throw new ManifestError(reference, `${where} has no mediaType`);
  return desc as Descriptor;
}

/**
 * Parses manifest bytes as fetched. `expectedDigest` is the digest the bytes must hash to (pulled by
 * digest, or named by a parent index); `contentType` is the response's Content-Type, used when the
 * JSON has no mediaType (allowed by OCI).
 */
export function parseManifest(reference: string, bytes: Buffer, contentType: string | undefined, expectedDigest?: string): ParsedManifest {
  const digest = computeDigest(bytes);
  if (expectedDigest !== undefined && expectedDigest !== digest) {
    const cause = isDigest(expectedDigest) ? new DigestMismatchError(expectedDigest, digest) : undefined;
    throw new ManifestError(reference, `content digest ${digest} does not match ${expectedDigest}`, cause ? { cause } : undefined);
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new ManifestError(reference, `invalid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ManifestError(reference, "not a JSON object");
  const obj = json as { schemaVersion?: unknown; mediaType?: unknown; manifests?: unknown; config?: unknown; layers?: unknown };
  const declared = typeof obj.mediaType === "string" ? obj.mediaType : undefined;
  if (obj.schemaVersion === 1 || SCHEMA1_TYPES.has(declared ?? "") || SCHEMA1_TYPES.has(contentType ?? "")) {
    throw new ManifestError(reference, "Docker schema 1 manifests are not supported");
  }
  if (obj.schemaVersion !== 2) throw new ManifestError(reference, `unsupported schemaVersion ${JSON.stringify(obj.schemaVersion)}`);

  let mediaType = declared;
  if (mediaType === undefined) {
    if (isIndexMediaType(contentType) || isManifestMediaType(contentType)) mediaType = contentType;
    else if (Array.isArray(obj.manifests)) mediaType = MediaType.ociIndex;
    else if (obj.config !== undefined) mediaType = MediaType.ociManifest;
  }
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(obj.manifests)) throw new ManifestError(reference, "index has no manifests array");
    obj.manifests.forEach((m, i) => checkDescriptor(reference, `manifests[${i}]`, m));
    return { kind: "index", mediaType: mediaType as string, digest, bytes, index: json as ImageIndex };
  }
  if (isManifestMediaType(mediaType)) {
    checkDescriptor(reference, "config", obj.config);
    if (!Array.isArray(obj.layers)) throw new ManifestError(reference, "manifest has no layers array");
    obj.layers.forEach((l, i) => checkDescriptor(reference, `layers[${i}]`, l));
    return { kind: "manifest", mediaType: mediaType as string, digest, bytes, manifest: json as Manifest };
  }
  throw new ManifestError(reference, `unsupported media type ${JSON.stringify(mediaType ?? contentType ?? "(none)")}`);
}
