// What the build engine calls for --cache-from / --cache-to: import every source before the build (a
// missing cache is a warning, as in BuildKit), export every destination after it.
import type { Lease } from "@kiln/cache";
import type { Digest } from "../image/oci.js";
import { RegistryClient } from "../registry/client.js";
import { exportCache, type CacheExportKeys, type CacheStores, type ExportCacheResult } from "./export.js";
import { CacheNotFoundError, importCache, type ImportCacheResult } from "./import.js";
import { LazyBlobFetcher } from "./lazy-fetcher.js";
import type { CacheFromSpec, CacheToSpec } from "./spec.js";

export interface CacheImportOutcome {
  spec: CacheFromSpec;
  result?: ImportCacheResult;
  /** Set when the cache did not exist; the build goes on without it. */
  warning?: string;
}

export interface ImportCachesOptions {
  client?: RegistryClient;
  signal?: AbortSignal;
  /** The build's lease (see importCache). */
  lease?: Lease;
}

/** Imports each --cache-from, then returns the fetcher that knows where every lazy blob lives. */
export async function importCaches(
  stores: CacheStores,
  specs: CacheFromSpec[],
  options: ImportCachesOptions = {},
): Promise<{ fetcher: LazyBlobFetcher; imports: CacheImportOutcome[] }> {
  const client = options.client ?? new RegistryClient();
  const imports: CacheImportOutcome[] = [];
  for (const spec of specs) {
    try {
      imports.push({ spec, result: await importCache(stores, spec, { client, ...(options.signal ? { signal: options.signal } : {}), ...(options.lease ? { lease: options.lease } : {}) }) });
    } catch (err) {
      if (!(err instanceof CacheNotFoundError)) throw err;
      imports.push({ spec, warning: `failed to import cache: ${err.message}` });
    }
  }
  return { fetcher: await LazyBlobFetcher.open(stores.blobs, { client }), imports };
}

/**
 * Export keys from the engine's step reports: `final` = steps of the stages in `finalStages` (the target and
 * the stages its FROM chain inherits layers from), `all` = every step.
 */
export function cacheExportKeys(steps: readonly { stage: string; cacheKey: Digest }[], finalStages: readonly string[]): CacheExportKeys {
  return {
    final: steps.filter((s) => finalStages.includes(s.stage)).map((s) => s.cacheKey),
    all: steps.map((s) => s.cacheKey),
  };
}

export async function exportCaches(
  stores: CacheStores,
  specs: CacheToSpec[],
  keys: CacheExportKeys,
  options: { client?: RegistryClient; fetcher?: LazyBlobFetcher; lease?: Lease; signal?: AbortSignal } = {},
): Promise<ExportCacheResult[]> {
  const out: ExportCacheResult[] = [];
  for (const spec of specs) out.push(await exportCache(stores, spec, { keys, ...options }));
  return out;
}
