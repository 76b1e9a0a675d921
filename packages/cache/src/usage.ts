// `kiln cache du`: what the cache records hold, per record and in total (shared blobs counted once).
import type { BlobStore } from "./blob-store.js";
import { CacheIndex } from "./cache-index.js";
import type { Digest } from "./digest.js";
import { recordBlobs } from "./gc-roots.js";
import { RemoteBlobIndex } from "./remote-blobs.js";

export interface RecordUsage {
  key: Digest;
  instruction: string;
  /** Bytes of the record's blobs held locally. */
  size: number;
  /** Bytes of its blobs that are only known remotely (lazy records from an import). */
  lazySize: number;
  /** Whether some of its blobs are also used by another record. */
  shared: boolean;
  createdAt: string;
  lastUsedAt: string;
}

export interface CacheUsage {
  /** Most recently used first. */
  records: RecordUsage[];
  /** Unique local bytes of all records' blobs (a shared blob counts once). */
  totalSize: number;
  /** Unique bytes the records could fetch lazily. */
  lazySize: number;
  /** Every blob file in the store, needed or not (composite parts once; composite records take no space). */
  storeSize: number;
  storeBlobs: number;
  /** Composite blobs recorded (each stands for the concatenation of some of the blobs above). */
  storeComposites: number;
}

export async function cacheUsage(store: BlobStore, options: { signal?: AbortSignal } = {}): Promise<CacheUsage> {
  const index = await CacheIndex.open(store);
  const remote = await RemoteBlobIndex.open(store);
  const local = new Map<Digest, number>();
  let storeSize = 0;
  for await (const b of store.list()) {
    local.set(b.digest, b.size);
    storeSize += b.size;
  }
  // A composite takes no space of its own: a record using one holds its parts (shared parts count once).
  const composites = new Map<Digest, Digest[]>();
  for await (const c of store.listComposites()) {
    options.signal?.throwIfAborted();
    composites.set(c.digest, c.parts.map((p) => p.digest));
  }
  const users = new Map<Digest, number>();
  const lazySizes = new Map<Digest, number>();
  const perRecord: { usage: RecordUsage; blobs: Digest[] }[] = [];
  for await (const r of index.list()) {
    options.signal?.throwIfAborted();
    const blobs = [...new Set(recordBlobs(r).flatMap((d) => composites.get(d) ?? [d]))];
    let size = 0;
    let lazySize = 0;
    for (const d of blobs) {
      users.set(d, (users.get(d) ?? 0) + 1);
      const s = local.get(d);
      if (s !== undefined) size += s;
      else {
        const src = await remote.get(d);
        if (src) {
          lazySize += src.size;
          lazySizes.set(d, src.size);
        }
      }
    }
    perRecord.push({ usage: { key: r.key, instruction: typeof r.inputs.instruction === "string" ? r.inputs.instruction : "", size, lazySize, shared: false, createdAt: r.createdAt, lastUsedAt: r.lastUsedAt }, blobs });
  }
  let totalSize = 0;
  for (const d of users.keys()) totalSize += local.get(d) ?? 0;
  let lazySize = 0;
  for (const s of lazySizes.values()) lazySize += s;
  const records = perRecord.map(({ usage, blobs }) => ({ ...usage, shared: blobs.some((d) => (users.get(d) ?? 0) > 1) }));
  records.sort((a, b) => b.lastUsedAt.localeCompare(a.lastUsedAt));
  return { records, totalSize, lazySize, storeSize, storeBlobs: local.size, storeComposites: composites.size };
}
