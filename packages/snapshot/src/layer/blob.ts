import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { writeLayerTar } from "./tar-writer.js";
import {
  MEDIA_TYPE_LAYER_TAR,
  MEDIA_TYPE_LAYER_TAR_GZIP,
  type Digest,
  type LayerCompression,
  type LayerEntry,
  type LayerInfo,
} from "./types.js";

export interface WriteLayerBlobOptions {
  compression?: LayerCompression;
  /** zlib level 0-9 (default 6, zlib's default). */
  level?: number;
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** Pass-through that hashes and counts what flows by. */
class HashTap extends Transform {
  readonly hash: Hash = createHash("sha256");
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

/**
 * Writes a layer blob to `sink` (which is ended) and returns its descriptor data. The diffID (sha256 of
 * the tar) and the digest (sha256 of the bytes written) are computed in the same streaming pass; the
 * pipeline propagates backpressure from the sink back to the file sources.
 *
 * Gzip output is reproducible: Node's zlib writes a fixed 10-byte header (MTIME 0, no FNAME, OS 3), so
 * the bytes depend only on the tar, the level and the zlib build.
 */
export async function writeLayerBlob(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  sink: NodeJS.WritableStream,
  options: WriteLayerBlobOptions = {},
): Promise<LayerInfo> {
  const compression = options.compression ?? "gzip";
  const tar = writeLayerTar(entries, {
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const pipelineOptions = options.signal ? { signal: options.signal } : {};
  const tarTap = new HashTap();
  if (compression === "none") {
    await pipeline(tar, tarTap, sink, pipelineOptions);
    const diffID = tarTap.digest();
    return { diffID, digest: diffID, size: tarTap.bytes, uncompressedSize: tarTap.bytes, mediaType: MEDIA_TYPE_LAYER_TAR };
  }
  const blobTap = new HashTap();
  const gzip = createGzip({ level: options.level ?? 6 });
  await pipeline(tar, tarTap, gzip, blobTap, sink, pipelineOptions);
  return {
    diffID: tarTap.digest(),
    digest: blobTap.digest(),
    size: blobTap.bytes,
    uncompressedSize: tarTap.bytes,
    mediaType: MEDIA_TYPE_LAYER_TAR_GZIP,
  };
}
