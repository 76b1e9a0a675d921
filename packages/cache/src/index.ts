// @kiln/cache: the on-disk store shared by every kiln process on a machine.
//   BlobStore    content-addressed blobs (blobs/sha256/<hex>), written via ingest/ temp files
//                and composite blobs (composites/sha256/<hex>.json: concatenations of regular blobs)
//   CacheIndex   step cache key -> step result records (index/)
//   BuildHistory step keys of recent builds per build identity, for explaining misses (history/)
//   TagStore     local image names -> manifest descriptors (tags/)
//   withFileLock cross-process mutual exclusion with stale-lock recovery
export * from "./digest.js";
export * from "./errors.js";
export { defaultStoreRoot } from "./store-root.js";
export { BlobStore, type BlobInfo, type CleanupIngestOptions } from "./blob-store.js";
export { BlobBatch } from "./blob-batch.js";
export { CompositeBlobError, type CompositeBlob, type CompositePart } from "./composite.js";
export { BlobIngest, type BlobWriteResult, type IngestOptions } from "./blob-ingest.js";
export { CacheIndex, type CacheKeyInputs, type CacheRecord, type NewCacheRecord } from "./cache-index.js";
export { BuildHistory, type BuildHistoryOptions, type BuildRecord, type BuildStep } from "./build-history.js";
export { TagStore, InvalidTagError, tagFileName, type TagDescriptor, type TagEntry } from "./tag-store.js";
export { acquireFileLock, withFileLock, type FileLock, type FileLockOptions } from "./file-lock.js";
export { isProcessAlive } from "./process.js";
export { writeFileAtomic, type AtomicWriteOptions } from "./fs-util.js";
export { Lease, LeaseReleasedError, gcLockPath, readLeases, removeDeadLeases, processStartTime, type LeaseInfo, type ReadLeasesOptions } from "./lease.js";
export { RemoteBlobIndex, type RemoteBlobSource } from "./remote-blobs.js";
export { collectGarbage, pruneCache, type GcOptions, type GcResult, type PruneOptions, type PruneResult } from "./gc.js";
export { collectRoots, recordBlobs, recordDiffID, type Roots } from "./gc-roots.js";
export { cacheUsage, type CacheUsage, type RecordUsage } from "./usage.js";
export { checkStore, type CheckIssue, type CheckOptions, type CheckResult } from "./check.js";
export { InvalidUnitError, parseDuration, parseSize, formatSize } from "./units.js";
export {
  cacheDuCommand,
  cachePruneCommand,
  cacheGcCommand,
  cacheCheckCommand,
  pruneOptionsFromFlags,
  type CacheDuOptions,
  type CachePruneFlags,
} from "./commands.js";
export { stepLockPath, withStepLock } from "./step-lock.js";
