// An archive `docker load` accepts: the OCI layout plus Docker's manifest.json and repositories files,
// as `docker save` writes it since Docker 25. Older daemons read manifest.json (gzip layers are fine:
// they decompress on load); OCI tools read the layout.
import path from "node:path";
import { mkdir } from "node:fs/promises";
import type { BlobSource } from "./blob-source.js";
import type { ImageArtifact } from "./image-artifact.js";
import { ociLayoutEntries, type OciOutputOptions } from "./oci-layout.js";
import { writeTarFile } from "./tar-writer.js";
import { familiarName, parseReference } from "../image/reference.js";

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `blobs/${alg}/${hex}`;
}

export interface DockerArchiveOptions extends OciOutputOptions {}

export function dockerManifestJson(image: ImageArtifact, names: string[]): Buffer {
  const repoTags = names.map((n) => familiarName(parseReference(n)));
  return Buffer.from(
    JSON.stringify([
      {
        Config: blobPath(image.manifest.config.digest),
        RepoTags: repoTags,
        Layers: image.manifest.layers.map((l) => blobPath(l.digest)),
      },
    ]),
  );
}

export function dockerRepositoriesJson(image: ImageArtifact, names: string[]): Buffer {
  const repos: Record<string, Record<string, string>> = {};
  const top = image.manifest.layers.at(-1);
  for (const name of names) {
    const ref = parseReference(name);
    if (!ref.tag || !top) continue;
    const repo = familiarName({ domain: ref.domain, path: ref.path });
    (repos[repo] ??= {})[ref.tag] = top.digest.slice("sha256:".length);
  }
  return Buffer.from(JSON.stringify(repos));
}

export async function writeDockerArchive(image: ImageArtifact, blobs: BlobSource, dest: string, options: DockerArchiveOptions = {}): Promise<void> {
  const names = (options.names ?? []).map((n) => parseReference(n)).map((r) => `${r.domain}/${r.path}${r.tag ? `:${r.tag}` : ""}`);
  const entries = ociLayoutEntries(image, blobs, names);
  entries.push({ name: "manifest.json", data: dockerManifestJson(image, names) });
  entries.push({ name: "repositories", data: dockerRepositoriesJson(image, names) });
  await mkdir(path.dirname(path.resolve(dest)), { recursive: true });
  await writeTarFile(dest, entries, options.signal);
}
