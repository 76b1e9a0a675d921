// Writes a layer's entries as a gzip blob straight into the store (digest verified on commit).
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  ChunkIndexError,
  parseChunkIndex,
  serializeChunkIndex,
  writeChunkedLayerBlob,
  writeLayerBlob,
  type ChunkedLayerEntry,
  type LayerEntry,
  type PreviousChunkedLayer,
} from "@kiln/snapshot";
import type { BlobStore } from "@kiln/cache";
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
      compression: "gzip",
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

/** Where the member index of a chunked layer blob lives: next to the blobs, by blob digest. */
function chunkIndexPath(blobs: BlobStore, digest: string): string {
  return path.join(blobs.dir("layer-index"), `${digest.slice("sha256:".length)}.json`);
}

/** The previous blob of the same step, for reusing its unchanged gzip members; undefined if unusable. */
async function previousLayer(blobs: BlobStore, digest: LayerDescriptor["digest"] | undefined): Promise<PreviousChunkedLayer | undefined> {
  if (!digest || !(await blobs.has(digest))) return undefined;
  try {
    const index = parseChunkIndex(await readFile(chunkIndexPath(blobs, digest), "utf8"));
    return { index, openBlobRange: (start, end) => blobs.createReadStream(digest, { start, end: end - 1 }) };
  } catch (err) {
    if (err instanceof ChunkIndexError || (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Writes a layer as parallel-compressed gzip members; with the previous build's layer of the same step,
 * members whose bytes did not change are copied instead of compressed again. Same entries, same bytes.
 */
export async function writeChunkedLayerToStore(
  blobs: BlobStore,
  entries: Iterable<ChunkedLayerEntry> | AsyncIterable<ChunkedLayerEntry>,
  options: LayerWriteOptions & { previousDigest?: LayerDescriptor["digest"] } = {},
): Promise<LayerDescriptor & { uncompressedSize: number }> {
  const previous = await previousLayer(blobs, options.previousDigest);
  const ingest = blobs.ingest(options.signal ? { signal: options.signal } : {});
  try {
    const info = await writeChunkedLayerBlob(entries, ingest, {
      ...(options.level !== undefined ? { level: options.level } : {}),
      ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
      ...(previous ? { previous } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const committed = await ingest.commit();
    const file = chunkIndexPath(blobs, committed.digest);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, serializeChunkIndex(info.index));
    await rename(tmp, file);
    return { mediaType: info.mediaType, digest: committed.digest, size: committed.size, diffID: info.diffID, uncompressedSize: info.uncompressedSize };
  } catch (err) {
    await ingest.abort().catch(() => undefined);
    throw err;
  }
}
