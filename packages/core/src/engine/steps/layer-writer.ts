// Writes a layer's entries as a gzip blob straight into the store (digest verified on commit).
import { writeLayerBlob, type LayerEntry } from "@kiln/snapshot";
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
