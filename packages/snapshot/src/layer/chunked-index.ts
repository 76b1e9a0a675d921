/**
 * The index persisted next to a chunked (multi-member gzip) layer blob. It lets the next build of the
 * same step copy unchanged gzip members byte-for-byte instead of recompressing them.
 */
import { LayerError } from "./errors.js";
import type { Digest } from "./types.js";

export const CHUNK_INDEX_VERSION = 1;

/** One tar entry whose header starts inside a member (or whose content continues into it). */
export interface ChunkEntryRef {
  /** Path as written in the tar (directories end in "/"). */
  path: string;
  /** sha256 (hex) of the entry's header bytes, PAX extension included: covers mode/uid/gid/mtime/size/link. */
  header: string;
  /** The caller's content fingerprint (e.g. the build context's per-file digest), when given. */
  fingerprint?: string;
  /** Set when the member starts inside this entry's content: the content offset it starts at. */
  contentOffset?: number;
}

export interface ChunkMember {
  /** Uncompressed tar range [offset, offset + length). */
  offset: number;
  length: number;
  /** Range of this gzip member in the blob [compressedOffset, compressedOffset + compressedLength). */
  compressedOffset: number;
  compressedLength: number;
  /** sha256 of the member's uncompressed tar bytes: the reuse key. */
  uncompressedDigest: Digest;
  /** sha256 of the member's gzip bytes: verifies a copy taken from the previous blob. */
  compressedDigest: Digest;
  entries: ChunkEntryRef[];
}

export interface ChunkIndex {
  version: typeof CHUNK_INDEX_VERSION;
  /** Members are only reusable when compressed with the same settings by the same zlib. */
  compression: { format: "gzip"; level: number; zlib: string };
  chunkBytes: number;
  diffID: Digest;
  digest: Digest;
  size: number;
  uncompressedSize: number;
  members: ChunkMember[];
}

/** A persisted chunk index is unreadable or inconsistent. */
export class ChunkIndexError extends LayerError {}

export function serializeChunkIndex(index: ChunkIndex): string {
  return JSON.stringify(index);
}

const isDigest = (v: unknown): v is Digest => typeof v === "string" && /^sha256:[0-9a-f]{64}$/.test(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Parses and checks an index: members must tile both the tar and the blob without gaps, so a copy
 * taken from `compressedOffset..+compressedLength` is exactly one member.
 */
export function parseChunkIndex(text: string): ChunkIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ChunkIndexError("chunk index is not JSON", { cause: err });
  }
  const idx = raw as Partial<ChunkIndex> | null;
  if (!idx || typeof idx !== "object" || idx.version !== CHUNK_INDEX_VERSION) {
    throw new ChunkIndexError(`unsupported chunk index version ${JSON.stringify(idx?.version)}`);
  }
  const c = idx.compression;
  if (!c || c.format !== "gzip" || !isCount(c.level) || typeof c.zlib !== "string") {
    throw new ChunkIndexError("chunk index has no valid compression settings");
  }
  if (!isDigest(idx.diffID) || !isDigest(idx.digest) || !isCount(idx.size) || !isCount(idx.uncompressedSize)) {
    throw new ChunkIndexError("chunk index has an invalid layer descriptor");
  }
  if (!isCount(idx.chunkBytes) || !Array.isArray(idx.members)) throw new ChunkIndexError("chunk index has no members");
  let offset = 0;
  let compressedOffset = 0;
  for (const [i, m] of idx.members.entries()) {
    const ok =
      m &&
      m.offset === offset &&
      m.compressedOffset === compressedOffset &&
      isCount(m.length) &&
      isCount(m.compressedLength) &&
      isDigest(m.uncompressedDigest) &&
      isDigest(m.compressedDigest) &&
      Array.isArray(m.entries);
    if (!ok) throw new ChunkIndexError(`chunk index member ${i} is invalid or not contiguous`);
    offset += m.length;
    compressedOffset += m.compressedLength;
  }
  if (offset !== idx.uncompressedSize || compressedOffset !== idx.size) {
    throw new ChunkIndexError("chunk index members do not add up to the layer sizes");
  }
  return idx as ChunkIndex;
}
