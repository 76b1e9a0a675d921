// `kiln pull` / `kiln push`: move images between the local store and registries.
import { parseArgs } from "node:util";
import path from "node:path";
import { compressImageLayers, formatReference, openStore, parsePlatform, parseReference, pullImage, pushImage, loadImageFromStore, hostPlatform, type Digest } from "@kiln/core";
import { parseCompressionOption, UsageError } from "../options.js";

type Io = { stdout: (s: string) => void; stderr: (s: string) => void; signal?: AbortSignal };

export const PULL_USAGE = `Usage: kiln pull [OPTIONS] NAME[:TAG|@DIGEST]

Download an image from its registry into the local store (blobs already there are not fetched again).

Options:
      --platform OS/ARCH  Pick this platform from a multi-platform image (default: this machine's)
      --store DIR         Store directory
  -q, --quiet             Print only the manifest digest
`;

export async function pullCmd(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { platform: { type: "string" }, store: { type: "string" }, quiet: { type: "boolean", short: "q" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return io.stdout(PULL_USAGE), 0;
  if (positionals.length !== 1) throw new UsageError(`"kiln pull" requires exactly 1 argument\n\n${PULL_USAGE}`);
  const store = await openStore(values.store !== undefined ? path.resolve(values.store) : undefined);
  const ref = parseReference(positionals[0]!);
  let fetched = 0;
  let existed = 0;
  const image = await pullImage(ref, store.blobs, {
    platform: values.platform ? parsePlatform(values.platform) : hostPlatform(),
    ...(io.signal ? { signal: io.signal } : {}),
    onProgress: (e) => {
      if (e.type === "done") fetched++;
      if (e.type === "exists") existed++;
    },
  });
  if (ref.digest === undefined) await store.tags.set(formatReference(ref), image.manifestDescriptor);
  if (values.quiet) io.stdout(`${image.manifestDescriptor.digest}\n`);
  else io.stdout(`${formatReference(ref)}: ${fetched} blobs downloaded, ${existed} already present\nDigest: ${image.manifestDescriptor.digest}\n`);
  return 0;
}

export const PUSH_USAGE = `Usage: kiln push [OPTIONS] NAME[:TAG]

Upload an image from the local store to its registry (blobs the registry has are skipped).

Options:
      --compression C     gzip (default) | uncompressed: how layers stored uncompressed are sent
      --store DIR         Store directory
`;

export async function pushCmd(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { store: { type: "string" }, compression: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return io.stdout(PUSH_USAGE), 0;
  const compression = parseCompressionOption(values.compression, "--compression") ?? "gzip";
  if (positionals.length !== 1) throw new UsageError(`"kiln push" requires exactly 1 argument\n\n${PUSH_USAGE}`);
  const store = await openStore(values.store !== undefined ? path.resolve(values.store) : undefined);
  const name = formatReference(parseReference(positionals[0]!));
  const tag = await store.tags.get(name);
  if (!tag) throw new UsageError(`no image named ${name} in the local store`);
  const { manifestDigest, manifest, config } = await loadImageFromStore(store, tag.digest as Digest, hostPlatform());
  const manifestBytes = await store.blobs.readBytes(manifestDigest);
  const configBytes = await store.blobs.readBytes(manifest.config.digest);
  const stored = { manifestDescriptor: { mediaType: manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json", digest: manifestDigest, size: manifestBytes.length }, manifest, manifestBytes, config, configBytes };
  // Layers built locally are stored uncompressed; the registry gets gzip ones unless asked otherwise.
  const image = await compressImageLayers(stored, store.blobs, { compression, ...(io.signal ? { signal: io.signal } : {}) });
  const result = await pushImage(
    image,
    store.blobs,
    name,
    io.signal ? { signal: io.signal } : {},
  );
  io.stdout(`${name}: ${result.uploaded.length} blobs uploaded, ${result.mounted.length} mounted, ${result.skipped.length} already there\nDigest: ${result.digest}\n`);
  return 0;
}
