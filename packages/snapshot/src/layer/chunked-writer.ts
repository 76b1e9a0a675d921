/**
 * Chunked layer writer: the layer tar compressed as a concatenation of gzip members (RFC 1952 allows
 * several members; Go's gzip reader, containerd, Docker, skopeo, Node's zlib and GNU gzip all read
 * them as one stream). Members are deflated in parallel and written in order, and a member whose
 * uncompressed bytes equal a member of the previous build's layer is copied from the previous blob
 * instead of being deflated again — after a one-file change only the member holding that file is
 * recompressed.
 *
 * Same entries → same blob bytes, with or without `previous` and with any worker count: boundaries
 * come from the tar bytes only (see chunked-cutter.ts) and a reused member is only taken when its
 * uncompressed sha256, the zlib build and the level all match (then deflate would produce those very
 * bytes). The diffID equals `writeLayerTar`'s sha256 (the tar is that writer's output, parsed in
 * flight); the blob digest differs from `writeLayerBlob`'s single-member gzip.
 */
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { TarMemberCutter, type RawMember } from "./chunked-cutter.js";
import { CompressPool } from "./chunked-compress.js";
import { CHUNK_INDEX_VERSION, type ChunkIndex, type ChunkMember } from "./chunked-index.js";
import { syncFileSource } from "./chunked-source.js";
import { LayerError } from "./errors.js";
import { normalizeLayerPath } from "./path.js";
import { writeLayerTar } from "./tar-writer.js";
import { MEDIA_TYPE_LAYER_TAR_GZIP, type Digest, type LayerEntry, type LayerInfo } from "./types.js";

export interface ChunkedLayerEntry extends LayerEntry {
  /** Content identity from the caller (the context's per-file digest); recorded in the index. */
  fingerprint?: string;
}

export interface PreviousChunkedLayer {
  index: ChunkIndex;
  /** Bytes [start, end) of the previous layer blob (end exclusive). */
  openBlobRange(start: number, end: number): NodeJS.ReadableStream;
}

export interface WriteChunkedLayerOptions {
  /** zlib level 0-9 (default 6). */
  level?: number;
  /** Target uncompressed bytes per gzip member (default 1 MiB, at least 64 KiB). */
  chunkBytes?: number;
  previous?: PreviousChunkedLayer;
  /** Members deflated at once (default: available cores). Does not change the output bytes. */
  workers?: number;
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

export interface ChunkedWriteStats {
  members: number;
  /** Members copied from the previous blob. */
  reusedMembers: number;
  /** Members deflated by this write. */
  compressedMembers: number;
  /** Reuse candidates whose previous bytes were missing or did not verify (then deflated). */
  reuseFallbacks: number;
  /** Most uncompressed member bytes held at once (queued members plus the one being cut). */
  peakBufferedBytes: number;
}

export interface ChunkedLayerInfo extends LayerInfo {
  index: ChunkIndex;
  stats: ChunkedWriteStats;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;
const MIN_CHUNK_BYTES = 64 << 10;

interface Deflated {
  data: Buffer;
  digest: Digest;
  reused: boolean;
}

interface Job {
  raw: RawMember;
  result: Promise<Deflated>;
}

/**
 * Writes the layer as a multi-member gzip blob to `sink` (which is ended) and returns the descriptor
 * data plus the ChunkIndex to persist for the next build. Memory stays bounded: at most `workers + 2`
 * members (each ≤ 4 × chunkBytes uncompressed) are in flight, and the sink's backpressure stops the tar.
 */
export async function writeChunkedLayerBlob(
  entries: Iterable<ChunkedLayerEntry> | AsyncIterable<ChunkedLayerEntry>,
  sink: NodeJS.WritableStream,
  options: WriteChunkedLayerOptions = {},
): Promise<ChunkedLayerInfo> {
  const { signal } = options;
  signal?.throwIfAborted();
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new LayerError(`invalid gzip level ${level}`);
  const chunkBytes = Math.max(MIN_CHUNK_BYTES, Math.floor(options.chunkBytes ?? DEFAULT_CHUNK_BYTES));
  const workers = Math.max(1, Math.floor(options.workers ?? availableParallelism()));
  const zlibVersion = process.versions.zlib ?? "unknown";

  const fingerprints = new Map<string, string>();
  const tarEntries: LayerEntry[] = [];
  for await (const e of entries) {
    const { fingerprint, sourcePath, ...entry } = e;
    if (fingerprint !== undefined) fingerprints.set(normalizeLayerPath(entry.path), fingerprint);
    if (sourcePath !== undefined && entry.type === "file" && (entry.size ?? 0) > 0) {
      const size = entry.size!;
      entry.open = () => syncFileSource(sourcePath, size);
    }
    tarEntries.push(entry);
  }

  const reusable = new Map<Digest, ChunkMember>();
  const prev = options.previous;
  if (prev && prev.index.compression.level === level && prev.index.compression.zlib === zlibVersion) {
    for (const m of prev.index.members) reusable.set(m.uncompressedDigest, m);
  }

  const pool = new CompressPool(workers, level);
  const stats: ChunkedWriteStats = { members: 0, reusedMembers: 0, compressedMembers: 0, reuseFallbacks: 0, peakBufferedBytes: 0 };
  const cutter = new TarMemberCutter(chunkBytes, (tarPath) => fingerprints.get(tarPath.replace(/\/$/, "")));
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  const members: ChunkMember[] = [];
  let uncompressedSize = 0;
  let size = 0;
  let queuedBytes = 0;

  const compress = async (raw: RawMember): Promise<Deflated> => {
    const data = await pool.compress(raw.data);
    return { data, digest: sha256(data), reused: false };
  };
  const reuse = async (raw: RawMember, from: ChunkMember): Promise<Deflated> => {
    try {
      const data = await readRange(prev!.openBlobRange(from.compressedOffset, from.compressedOffset + from.compressedLength), signal);
      if (data.length === from.compressedLength && sha256(data) === from.compressedDigest) {
        return { data, digest: from.compressedDigest, reused: true };
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      // A missing or unreadable previous blob only costs the reuse.
    }
    stats.reuseFallbacks++;
    return compress(raw);
  };
  const schedule = (raw: RawMember): Job => {
    queuedBytes += raw.length;
    const from = reusable.get(raw.digest);
    const result = from && from.length === raw.length ? reuse(raw, from) : compress(raw);
    result.catch(() => undefined); // observed when emitted; never an unhandled rejection if abandoned
    return { raw, result };
  };
  const emit = async (job: Job): Promise<Buffer> => {
    const { data, digest, reused } = await job.result;
    signal?.throwIfAborted();
    if (reused) stats.reusedMembers++;
    else stats.compressedMembers++;
    stats.members++;
    queuedBytes -= job.raw.length;
    blobHash.update(data);
    members.push({
      offset: job.raw.offset,
      length: job.raw.length,
      compressedOffset: size,
      compressedLength: data.length,
      uncompressedDigest: job.raw.digest,
      compressedDigest: digest,
      entries: job.raw.entries,
    });
    size += data.length;
    return data;
  };

  const tar = writeLayerTar(tarEntries, {
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(signal ? { signal } : {}),
  });
  const maxQueue = workers + 2;
  async function* produce(): AsyncGenerator<Buffer> {
    const queue: Job[] = [];
    try {
      for await (const chunk of tar as AsyncIterable<Buffer>) {
        cutter.push(chunk);
        stats.peakBufferedBytes = Math.max(stats.peakBufferedBytes, queuedBytes + cutter.pendingBytes);
        for (const raw of cutter.ready.splice(0)) {
          diffHash.update(raw.data);
          uncompressedSize += raw.length;
          queue.push(schedule(raw));
          while (queue.length > maxQueue) yield await emit(queue.shift()!);
        }
      }
      cutter.end();
      for (const raw of cutter.ready.splice(0)) {
        diffHash.update(raw.data);
        uncompressedSize += raw.length;
        queue.push(schedule(raw));
      }
      while (queue.length > 0) yield await emit(queue.shift()!);
    } finally {
      pool.close(); // an abandoned write starts no further deflates
    }
  }

  await pipeline(Readable.from(produce()), sink, signal ? { signal } : {});

  const diffID: Digest = `sha256:${diffHash.digest("hex")}`;
  const digest: Digest = `sha256:${blobHash.digest("hex")}`;
  const index: ChunkIndex = {
    version: CHUNK_INDEX_VERSION,
    compression: { format: "gzip", level, zlib: zlibVersion },
    chunkBytes,
    diffID,
    digest,
    size,
    uncompressedSize,
    members,
  };
  return { diffID, digest, size, uncompressedSize, mediaType: MEDIA_TYPE_LAYER_TAR_GZIP, index, stats };
}

function sha256(data: Buffer): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function readRange(stream: NodeJS.ReadableStream, signal: AbortSignal | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      chunks.push(chunk);
    }
  } finally {
    (stream as { destroy?: () => void }).destroy?.();
  }
  return Buffer.concat(chunks);
}
