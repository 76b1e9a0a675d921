// Images in a registry (`docker://host/repo:tag`): manifests and config are fetched; layers stream from
// the registry only when a command needs their content (history sizes, analyze).
import { computeDigest } from "@kiln/cache";
import type { Digest, Platform } from "../image/oci.js";
import { familiarName, type ImageReference } from "../image/reference.js";
import { RegistryClient } from "../registry/client.js";
import { resolveImage } from "../registry/pull.js";
import { InvalidImageError } from "./errors.js";
import type { OpenedImage } from "./image-source.js";
import { checkConfig, joinLayers, parseJsonDocument } from "./image-parts.js";

const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export async function openRegistryImage(
  spec: string,
  ref: ImageReference,
  options: { platform: Platform; client?: RegistryClient; signal?: AbortSignal },
): Promise<OpenedImage> {
  const client = options.client ?? new RegistryClient();
  const resolved = await resolveImage(ref, { platform: options.platform, client, ...(options.signal ? { signal: options.signal } : {}) });
  const { manifest } = resolved;
  const { body } = await client.openBlob(ref, manifest.config.digest, options.signal);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > MAX_CONFIG_BYTES) {
      body.destroy();
      throw new InvalidImageError(`${spec}: config blob is larger than ${MAX_CONFIG_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const configBytes = Buffer.concat(chunks);
  if (computeDigest(configBytes) !== manifest.config.digest) throw new InvalidImageError(`${spec}: config blob does not match ${manifest.config.digest}`);
  const rawConfig = parseJsonDocument<Record<string, unknown>>(configBytes, `${spec}: config`);
  const config = checkConfig(rawConfig, spec);
  const layers = joinLayers(manifest, config, spec);
  const repo = { domain: ref.domain, path: ref.path };
  const digestOfName: Digest = resolved.index?.descriptor.digest ?? resolved.manifestDigest;
  return {
    kind: "registry",
    spec,
    id: manifest.config.digest,
    manifestDigest: resolved.manifestDigest,
    manifestDescriptor: { mediaType: resolved.manifestDescriptor.mediaType, digest: resolved.manifestDigest, size: resolved.manifestBytes.length },
    manifest,
    config,
    rawConfig,
    layers,
    repoTags: ref.tag !== undefined ? [familiarName({ ...repo, tag: ref.tag })] : [],
    repoDigests: [familiarName({ ...repo, digest: digestOfName })],
    openLayer: async (i: number, signal?: AbortSignal) => (await client.openBlob(ref, layers[i]!.digest, signal)).body,
  };
}
