export type { Digest, LayerCompression, LayerEntry, LayerEntryType, LayerInfo } from "./types.js";
export { MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_TAR_GZIP } from "./types.js";
export { BadTarError, ExtractError, LayerEntryError, LayerError, NotAnArchiveError, UnsafePathError } from "./errors.js";
export { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, layerSortKey, normalizeLayerPath } from "./path.js";
export { opaqueEntry, parseWhiteout, whiteoutEntry, type WhiteoutKind, type WhiteoutOptions } from "./whiteout.js";
export { writeLayerTar, type WriteLayerTarOptions } from "./tar-writer.js";
export { writeLayerBlob, type WriteLayerBlobOptions } from "./blob.js";
export { CompressPool } from "./chunked-compress.js";
export { DecompressError, decompressStream, detectCompression, type ArchiveCompression } from "./decompress.js";
export { detectArchive, readLayerTar, type ReadLayerTarOptions, type TarReadEntry } from "./tar-reader.js";
export { extractLayer, type ExtractLayerOptions, type ExtractLayerResult, type WhiteoutMode } from "./extract.js";
export {
  CHUNK_INDEX_VERSION,
  ChunkIndexError,
  parseChunkIndex,
  serializeChunkIndex,
  type ChunkEntryRef,
  type ChunkIndex,
  type ChunkMember,
} from "./chunked-index.js";
export {
  DEFAULT_CHUNK_BYTES,
  writeChunkedLayerBlob,
  type ChunkedLayerEntry,
  type ChunkedLayerInfo,
  type ChunkedWriteStats,
  type PreviousChunkedLayer,
  type WriteChunkedLayerOptions,
} from "./chunked-writer.js";
export {
  DEFAULT_PART_BYTES,
  TAR_PARTS_INDEX_VERSION,
  parseTarPartsIndex,
  serializeTarPartsIndex,
  writeTarParts,
  type TarPartEntry,
  type TarPartRef,
  type TarPartSink,
  type TarPartsIndex,
  type TarPartsResult,
  type TarPartsStats,
  type WriteTarPartsOptions,
  type SpeculativeDiffID,
} from "./tar-parts.js";
export { speculateDiffID, type ChangedLayerFile } from "./part-speculation.js";
