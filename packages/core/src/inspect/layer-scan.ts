// One streaming pass over a layer blob: decompress, hash and count the tar (diffID check, tar length),
// and hand each entry to a visitor. Also computes the layer's size as Docker reports it.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { decompressStream, readLayerTar, type LayerEntry } from "@kiln/snapshot";
import type { Digest } from "../image/oci.js";
import { LayerDiffIdMismatchError } from "./errors.js";

export interface LayerFigures {
  /**
   * Docker's layer size (what `docker history` shows and `docker inspect` Size adds up): the content bytes
   * of the tar's regular-file entries, as moby counts layers built by BuildKit (tar-split payload sizes)
   * or applied with the naive differ. Layers dockerd pulls or loads onto overlay2 with native diff also
   * count symlink target lengths (a few kB per image at most); kiln gives one figure for any source.
   */
  size: number;
  /** Length of the uncompressed tar stream. */
  tarSize: number;
  /** sha256 of the uncompressed tar. */
  diffID: Digest;
}

export interface ScanLayerOptions {
  /** Fail with LayerDiffIdMismatchError unless the content hashes to this. */
  expectedDiffID?: Digest;
  /** Called for each entry in archive order (file bodies are skipped). */
  onEntry?: (entry: LayerEntry) => void;
  signal?: AbortSignal;
}

/** Bytes an entry contributes to Docker's layer size: a regular file's content length, else 0. */
export function entryDiskSize(entry: LayerEntry): number {
  return entry.type === "file" ? (entry.size ?? 0) : 0;
}

export async function scanLayer(blob: NodeJS.ReadableStream, options: ScanLayerOptions = {}): Promise<LayerFigures> {
  const { signal } = options;
  const { stream: plain } = await decompressStream(blob, signal);
  const hash = createHash("sha256");
  let tarSize = 0;
  const source = plain[Symbol.asyncIterator]();
  const take = async (): Promise<Buffer | undefined> => {
    const r = await source.next();
    if (r.done) return undefined;
    const chunk = typeof r.value === "string" ? Buffer.from(r.value) : (r.value as Buffer);
    hash.update(chunk);
    tarSize += chunk.length;
    return chunk;
  };
  // The tar reader stops at the end-of-archive blocks and closes its input; the feed it gets is a
  // separate stream so that closing it leaves `source` open for draining the rest into the hash.
  const feed = Readable.from(
    (async function* () {
      for (;;) {
        const chunk = await take();
        if (!chunk) return;
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
  let size = 0;
  try {
    for await (const { entry } of readLayerTar(feed, signal ? { signal } : {})) {
      size += entryDiskSize(entry);
      options.onEntry?.(entry);
    }
    while (await take()) signal?.throwIfAborted();
  } finally {
    plain.destroy();
  }
  const diffID: Digest = `sha256:${hash.digest("hex")}`;
  if (options.expectedDiffID !== undefined && options.expectedDiffID !== diffID) throw new LayerDiffIdMismatchError(options.expectedDiffID, diffID);
  return { size, tarSize, diffID };
}
