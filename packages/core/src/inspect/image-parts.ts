// Shared checks when assembling an OpenedImage from a manifest and a config.
import type { Digest, ImageConfig, LayerDescriptor, Manifest } from "../image/oci.js";
import { familiarName, parseReference } from "../image/reference.js";
import { InvalidImageError } from "./errors.js";

export function parseJsonDocument<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString("utf8")) as T;
  } catch (err) {
    throw new InvalidImageError(`${what} is not valid JSON`, { cause: err });
  }
}

/** The config as the OCI model, after checking the parts every command relies on. */
export function checkConfig(raw: Record<string, unknown>, what: string): ImageConfig {
  const rootfs = raw["rootfs"] as { diff_ids?: unknown } | undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids)) throw new InvalidImageError(`${what}: config has no rootfs.diff_ids`);
  if (raw["history"] !== undefined && !Array.isArray(raw["history"])) throw new InvalidImageError(`${what}: config history is not a list`);
  return raw as unknown as ImageConfig;
}

/** Pairs manifest layers with config diffIDs; their counts must agree. */
export function joinLayers(manifest: Manifest, config: ImageConfig, what: string): LayerDescriptor[] {
  const diffIds = config.rootfs.diff_ids;
  if (!Array.isArray(manifest.layers) || diffIds.length !== manifest.layers.length) {
    throw new InvalidImageError(`${what}: manifest has ${manifest.layers?.length ?? 0} layers but the config lists ${diffIds.length} diff_ids`);
  }
  return manifest.layers.map((l, i) => ({ ...l, diffID: diffIds[i] as Digest }));
}

/** `docker.io/library/app:1` → `app:1`; names that do not parse are kept as given. */
export function familiar(name: string): string {
  try {
    return familiarName(parseReference(name));
  } catch {
    return name;
  }
}

/** `app@sha256:…` for the repository of `name`. */
export function repoDigest(name: string, digest: Digest): string | undefined {
  try {
    const ref = parseReference(name);
    return familiarName({ domain: ref.domain, path: ref.path, digest });
  } catch {
    return undefined;
  }
}

export function uniq(values: Iterable<string>): string[] {
  return [...new Set(values)];
}
