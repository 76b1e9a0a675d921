// `openImage(spec)`: one entry point for every place an image can be read from.
//   app:1 | docker.io/x/y@sha256:… | sha256:<id>   kiln's local store
//   oci:DIR[:name]                               OCI layout directory
//   oci-archive:FILE.tar[:name]                  OCI layout as a (plain) tar
//   docker-archive:FILE.tar[:name]               `docker save` output, old or Docker 25+ layout
//   docker://host/repo:tag                       a registry
import { stat } from "node:fs/promises";
import { hostPlatform, type Platform } from "../image/oci.js";
import { parseReference } from "../image/reference.js";
import { openStore, type KilnStore } from "../engine/store.js";
import type { RegistryClient } from "../registry/client.js";
import { DirTree, TarTree } from "./file-tree.js";
import type { ImageSourceKind, OpenedImage } from "./image-source.js";
import { openDockerArchiveImage } from "./source-docker-archive.js";
import { openLayoutImage } from "./source-layout.js";
import { openRegistryImage } from "./source-registry.js";
import { openStoreImage } from "./source-store.js";

export interface OpenImageOptions {
  /** The local store; default: openStore() (also where layer figures are cached). */
  store?: KilnStore;
  /** Which manifest to take from an index; default: the host platform. */
  platform?: Platform;
  /** Registry client for docker:// specs (credentials, insecure registries). */
  registryClient?: RegistryClient;
  signal?: AbortSignal;
}

export interface ImageSpec {
  kind: ImageSourceKind;
  /** File or directory (layout/archive kinds), or the reference (store/registry). */
  target: string;
  /** Image name inside a layout or archive. */
  name?: string;
}

const TRANSPORTS: readonly [string, ImageSourceKind][] = [
  ["oci-archive:", "oci-archive"],
  ["docker-archive:", "docker-archive"],
  ["oci:", "oci"],
  ["docker://", "registry"],
];

/**
 * Splits `PATH[:name]` (skopeo's syntax; the name may itself hold colons, as in `app:1`): the shortest
 * prefix that exists on disk is the path. When none exists, the whole text is the path (and fails later).
 */
async function splitPathAndName(rest: string): Promise<{ target: string; name?: string }> {
  for (let colon = rest.indexOf(":"); colon > 0; colon = rest.indexOf(":", colon + 1)) {
    const candidate = rest.slice(0, colon);
    if (await stat(candidate).then(() => true, () => false)) return { target: candidate, name: rest.slice(colon + 1) };
  }
  return { target: rest };
}

export async function parseImageSpec(spec: string): Promise<ImageSpec> {
  for (const [prefix, kind] of TRANSPORTS) {
    if (!spec.startsWith(prefix)) continue;
    const rest = spec.slice(prefix.length);
    if (kind === "registry") return { kind, target: rest };
    const { target, name } = await splitPathAndName(rest);
    return name !== undefined ? { kind, target, name } : { kind, target };
  }
  return { kind: "store", target: spec };
}

export async function openImage(spec: string, options: OpenImageOptions = {}): Promise<OpenedImage> {
  const platform = options.platform ?? hostPlatform();
  const parsed = await parseImageSpec(spec);
  const named = parsed.name !== undefined ? { name: parsed.name } : {};
  switch (parsed.kind) {
    case "store":
      return openStoreImage(parsed.target, options.store ?? (await openStore()), platform);
    case "oci":
      return openLayoutImage(new DirTree(parsed.target), { kind: "oci", spec, platform, ...named });
    case "oci-archive":
      return openLayoutImage(await TarTree.open(parsed.target, options.signal), { kind: "oci-archive", spec, platform, ...named });
    case "docker-archive":
      return openDockerArchiveImage(await TarTree.open(parsed.target, options.signal), { spec, platform, ...named, ...(options.signal ? { signal: options.signal } : {}) });
    case "registry":
      return openRegistryImage(spec, parseReference(parsed.target), {
        platform,
        ...(options.registryClient ? { client: options.registryClient } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
  }
}
