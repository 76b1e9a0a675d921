// Build cache across hosts: --cache-to / --cache-from (local directory or registry artifact), with
// imported records' layers fetched lazily.
export { CacheSpecError, parseCacheFromSpec, parseCacheToSpec, type CacheExportMode, type CacheFromSpec, type CacheToSpec } from "./spec.js";
export {
  CACHE_ARTIFACT_TYPE,
  CACHE_CONFIG_MEDIA_TYPE,
  FILES_INDEX_MEDIA_TYPE,
  CacheFormatError,
  type CacheConfig,
  type ExportedRecord,
} from "./format.js";
export { LazyBlobFetcher, LazyBlobUnavailableError, type LazyBlobFetcherOptions } from "./lazy-fetcher.js";
export { exportCache, type CacheExportKeys, type CacheStores, type ExportCacheOptions, type ExportCacheResult } from "./export.js";
export { importCache, CacheNotFoundError, type ImportCacheOptions, type ImportCacheResult } from "./import.js";
export { importCaches, exportCaches, cacheExportKeys, type CacheImportOutcome, type ImportCachesOptions } from "./build-hooks.js";
