// Writes a layer's entries into the store, uncompressed (as dockerd's image store keeps layers): outputs and
// pushes compress them. Small layers (RUN diffs) are one blob; COPY/ADD layers are parts plus a composite.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  DEFAULT_PART_BYTES,
  MEDIA_TYPE_LAYER_TAR,
  parseTarPartsIndex,
  serializeTarPartsIndex,
  speculateDiffID,
  writeLayerBlob,
  writeTarParts,
  type ChangedLayerFile,
  type LayerEntry,
  type SpeculativeDiffID,
  type TarPartEntry,
  type TarPartSink,
  type TarPartsIndex,
  type TarPartsStats,
} from "@kiln/snapshot";
import type { BlobBatch, BlobStore } from "@kiln/cache";
import type { LayerDescriptor } from "../../image/oci.js";

export interface LayerWriteOptions {
  sourceDateEpoch?: number;
  level?: number;
  signal?: AbortSignal;
}

export async function writeLayerToStore(blobs: BlobStore, entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, options: LayerWriteOptions = {}): Promise<LayerDescriptor & { uncompressedSize: number }> {
  const ingest = blobs.ingest(options.signal ? { signal: options.signal } : {});
  try {
    const info = await writeLayerBlob(entries, ingest, {
      compression: "none",
      ...(options.level !== undefined ? { level: options.level } : {}),
      ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const committed = await ingest.commit();
    return { mediaType: info.mediaType, digest: committed.digest, size: committed.size, diffID: info.diffID, uncompressedSize: info.uncompressedSize };
  } catch (err) {
    await ingest.abort().catch(() => undefined);
    throw err;
  }
}

/** Where the part list of a parts layer lives, by layer digest (= diffID). */
function partsIndexPath(blobs: BlobStore, digest: string): string {
  return path.join(blobs.dir("layer-parts"), `${digest.slice("sha256:".length)}.json`);
}

async function previousParts(blobs: BlobStore, digest: LayerDescriptor["digest"] | undefined): Promise<TarPartsIndex | undefined> {
  if (!digest) return undefined;
  try {
    return parseTarPartsIndex(readFileSync(partsIndexPath(blobs, digest), "utf8")); // small, on the way to the speculation
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** The previous build's part list of this step's layer, loaded once for a speculation and the write. */
export interface PreparedPartsLayer {
  previous: TarPartsIndex | undefined;
  speculation: SpeculativeDiffID | undefined;
}

/**
 * Loads the previous layer's part list and, when `changed` (the files edited since) lets it, starts hashing
 * the guessed new layer right away (see @kiln/snapshot part-speculation.ts): pass the result to
 * writePartsLayerToStore, which checks the guess against what it writes.
 */
export async function preparePartsLayer(
  blobs: BlobStore,
  previousDigest: LayerDescriptor["digest"] | undefined,
  changed: readonly ChangedLayerFile[] | undefined,
  sourceDateEpoch?: number,
): Promise<PreparedPartsLayer> {
  const previous = await previousParts(blobs, previousDigest);
  const speculation = previous && changed && changed.some((c) => c.type === "file") && previous.partBytes === DEFAULT_PART_BYTES ? speculateDiffID(previous, changed, (d) => blobs.path(d), sourceDateEpoch) : undefined;
  return { previous, speculation };
}

/**
 * Parts are regular blobs, written through one BlobBatch (sync writes, one durable commit) and checked and
 * read with sync calls: the cheapest way for ~1 MiB files that sit in the page cache.
 */
function partSink(batch: BlobBatch): TarPartSink {
  return {
    has: (d) => batch.has(d),
    read(d, size, into) {
      const fd = openSync(batch.readPath(d), "r");
      try {
        let n = 0;
        while (n < size) {
          const got = readSync(fd, into, n, size - n, null);
          if (got === 0) break;
          n += got;
        }
        return into.subarray(0, n);
      } finally {
        closeSync(fd);
      }
    },
    async write(data, digest) {
      batch.add(data, digest);
    },
    readPath: (d) => batch.readPath(d),
  };
}

/**
 * Writes an uncompressed layer as parts (see @kiln/snapshot writeTarParts) recorded as one composite blob
 * whose digest is the diffID. With the previous build's layer of the same step, parts whose recipe (headers
 * and content fingerprints) did not change are reused without reading their sources: after a one-file change
 * only the part holding that file is written. Same entries, same bytes and digest as writeLayerToStore.
 */
export async function writePartsLayerToStore(
  blobs: BlobStore,
  entries: Iterable<TarPartEntry> | AsyncIterable<TarPartEntry>,
  options: LayerWriteOptions & {
    previousDigest?: LayerDescriptor["digest"];
    /** From preparePartsLayer (instead of previousDigest): the previous part list, and a speculation on it. */
    prepared?: PreparedPartsLayer;
    onStats?: (stats: TarPartsStats) => void;
    /** Called once every part is planned, while the diffID is still being hashed: the caller's spare work. */
    whileHashing?: () => unknown;
    /** The build's lease: parts taken from earlier layers are added before the composite names them. */
    lease?: { add(digests: LayerDescriptor["digest"][]): Promise<void> };
  } = {},
): Promise<LayerDescriptor & { uncompressedSize: number }> {
  const previous = options.prepared ? options.prepared.previous : await previousParts(blobs, options.previousDigest);
  const speculation = options.prepared?.speculation;
  const batch = blobs.batch();
  let result: Awaited<ReturnType<typeof writeTarParts>>;
  let leased = false;
  try {
    result = await writeTarParts(entries, partSink(batch), {
      ...(previous ? { previous } : {}),
      ...(speculation ? { speculation } : {}),
      // While the diffID is hashed: make the new parts durable and lease every part (off the critical path).
      beforeDigest: async (parts, readable) => {
        if (!readable) return;
        await batch.commit();
        await options.lease?.add(parts.map((p) => p.digest));
        leased = true;
      },
      ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.whileHashing ? { whileHashing: options.whileHashing } : {}),
    });
    await batch.commit();
  } catch (err) {
    speculation?.cancel();
    await batch.abort();
    throw err;
  }
  if (!leased) await options.lease?.add(result.parts.map((p) => p.digest));
  // One part is the whole tar: that part's blob already is the layer.
  if (result.parts.length > 1) {
    const parts = result.parts;
    const writeIndex = async (): Promise<void> => {
      const index: TarPartsIndex = { version: 1, partBytes: DEFAULT_PART_BYTES, diffID: result.diffID, size: result.size, parts };
      const file = partsIndexPath(blobs, result.diffID);
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, serializeTarPartsIndex(index));
      await rename(tmp, file);
    };
    // Independent files (the index only speeds up the next build): written side by side.
    await Promise.all([blobs.writeComposite(result.diffID, parts.map(({ digest, size }) => ({ digest, size })), options.signal ? { signal: options.signal } : {}), writeIndex()]);
  }
  options.onStats?.(result.stats);
  return { mediaType: MEDIA_TYPE_LAYER_TAR, digest: result.diffID, size: result.size, diffID: result.diffID, uncompressedSize: result.size };
}
