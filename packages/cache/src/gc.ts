// Garbage collection and pruning of the store. GC removes what no root needs (blobs, lazy-blob sources,
// unpacked layers, layer listings/figures, crash leftovers); prune first drops cache records (all, least
// recently used beyond a size budget, or unused for a while) and then collects.
import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { CacheIndex, type CacheRecord } from "./cache-index.js";
import { isDigest, type Digest } from "./digest.js";
import { withFileLock } from "./file-lock.js";
import { isErrno, readdirOrEmpty, tempNamePid, unlinkIfExists } from "./fs-util.js";
import { addLeaseRoots, collectRoots, recordBlobs, tagRoots, type Roots } from "./gc-roots.js";
import { gcLockPath, readLeases, removeDeadLeases, type LeaseInfo, type ReadLeasesOptions } from "./lease.js";
import { isProcessAlive } from "./process.js";
import { RemoteBlobIndex } from "./remote-blobs.js";

export interface GcOptions {
  signal?: AbortSignal;
  /**
   * Keep blobs and unpacked layers modified less than this long ago, for writers that hold no lease.
   * Default 0: builds protect what they write through their lease.
   */
  graceMs?: number;
  leases?: ReadLeasesOptions;
}

export interface GcResult {
  removedBlobs: Digest[];
  freedBytes: number;
  keptBlobs: number;
  removedLayerDirs: number;
  removedLayerCaches: number;
  removedRemoteSources: number;
  removedIngest: number;
  removedTemp: number;
  removedLeases: number;
}

/** Directories holding per-diffID files `<hex>.json` that are cheap to recompute. */
/** Per-layer caches: listings and sizes keyed by diffID, chunked-gzip member indexes keyed by blob digest. */
const LAYER_CACHE_DIRS = [
  { dir: "layer-listing", key: "diffID" },
  { dir: "layer-sizes", key: "diffID" },
  { dir: "layer-index", key: "blob" },
  { dir: "layer-parts", key: "blob" },
] as const;
const LAYERS_DIR = "layers";
const COMPLETE_MARKER = ".kiln-complete";
/** mtime resolution and clock slack when comparing blob mtimes with lease start times. */
const MTIME_SLACK_MS = 2000;
const TEMP_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * Removes everything unreachable from tags, cache records and live leases. The sweep runs under the GC lock
 * with a fresh read of the leases, so a digest leased before it is never removed; blobs modified since the
 * oldest live lease began are kept too (a build adds what it writes to its lease only after writing it).
 */
export async function collectGarbage(store: BlobStore, options: GcOptions = {}): Promise<GcResult> {
  const { signal } = options;
  const result: GcResult = {
    removedBlobs: [], freedBytes: 0, keptBlobs: 0, removedLayerDirs: 0, removedLayerCaches: 0,
    removedRemoteSources: 0, removedIngest: 0, removedTemp: 0, removedLeases: 0,
  };
  let keptRoots: Roots | undefined;
  const remote = await RemoteBlobIndex.open(store);
  const trash: string[] = [];
  // Mark and sweep both run under the lock: a build that writes a record or tag and then drops its lease
  // between an unlocked mark and the sweep would otherwise lose blobs the new record or tag needs.
  await withFileLock(
    gcLockPath(store),
    async () => {
      result.removedLeases = await removeDeadLeases(store, options.leases);
      const roots = await collectRoots(store, { ...(options.leases ? { leases: options.leases } : {}), ...(signal ? { signal } : {}) });
      const leases = await readLeases(store, options.leases);
      addLeaseRoots(leases, roots);
      keptRoots = roots;
      const keepNewerThan = protectSince(leases, options.graceMs ?? 0);
      // Composites first: a kept one keeps its parts (regular blobs the sweep below would not otherwise see
      // referenced); an unreachable one loses its record, and its parts go unless something else needs them.
      // A build's new parts are younger than its lease, and reused older parts are in it (Lease.add), so a
      // composite not yet recorded cannot lose its parts here.
      for await (const c of store.listCompositeRecords()) {
        signal?.throwIfAborted();
        if (roots.blobs.has(c.digest) || c.mtimeMs >= keepNewerThan) {
          for (const p of c.composite?.parts ?? []) roots.blobs.add(p.digest);
          continue;
        }
        await store.delete(c.digest);
        result.removedBlobs.push(c.digest);
      }
      for await (const blob of store.list()) {
        signal?.throwIfAborted();
        if (roots.blobs.has(blob.digest) || blob.mtimeMs >= keepNewerThan) {
          result.keptBlobs++;
          continue;
        }
        await store.delete(blob.digest);
        result.removedBlobs.push(blob.digest);
        result.freedBytes += blob.size;
      }
      for await (const { digest } of remote.list()) {
        if (!roots.blobs.has(digest) && (await remote.delete(digest))) result.removedRemoteSources++;
      }
      trash.push(...(await trashUnusedLayers(store, roots, keepNewerThan)));
    },
    signal ? { signal } : {},
  );
  // Unpacked layers were renamed aside under the lock; deleting their trees can take a while, so not under it.
  for (const dir of trash) {
    await rm(dir, { recursive: true, force: true });
    result.removedLayerDirs++;
  }
  result.removedLayerCaches = await removeUnusedLayerCaches(store, keptRoots!);
  result.removedIngest = await store.cleanupIngest({ removeDeadOwners: true });
  result.removedTemp = await removeDeadTemps(store.dir("tmp"));
  return result;
}

function protectSince(leases: LeaseInfo[], graceMs: number): number {
  let since = Date.now() - graceMs;
  for (const l of leases) if (l.alive && Number.isFinite(l.createdAtMs)) since = Math.min(since, l.createdAtMs - MTIME_SLACK_MS);
  return graceMs > 0 || leases.some((l) => l.alive) ? since : Infinity;
}

/**
 * Unpacked layers (`layers/<hex>`) whose diffID no root needs and whose source blob is gone from the roots,
 * plus extraction/GC leftovers of dead processes, are renamed to `layers/<hex>.gc-<pid>-<rand>`; returns them.
 */
async function trashUnusedLayers(store: BlobStore, roots: Roots, keepNewerThan: number): Promise<string[]> {
  const dir = store.dir(LAYERS_DIR);
  const out: string[] = [];
  for (const name of await readdirOrEmpty(dir)) {
    const path = join(dir, name);
    const leftover = /^[0-9a-f]{64}\.(?:tmp|gc)-(\d+)-/.exec(name);
    if (leftover) {
      const pid = Number(leftover[1]);
      if (pid !== process.pid && !isProcessAlive(pid)) out.push(await moveAside(path, dir, name.slice(0, 64)));
      continue;
    }
    if (!/^[0-9a-f]{64}$/.test(name)) continue; // lock files and the like
    const diffID: Digest = `sha256:${name}`;
    if (roots.diffIDs.has(diffID)) continue;
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      if (isErrno(err, "ENOENT")) continue;
      throw err;
    }
    if (st.mtimeMs >= keepNewerThan) continue;
    const source = (await readFile(join(path, COMPLETE_MARKER), "utf8").catch(() => "")).trim();
    if (isDigest(source) && roots.blobs.has(source)) continue;
    out.push(await moveAside(path, dir, name));
  }
  return out;
}

async function moveAside(path: string, dir: string, hex: string): Promise<string> {
  const aside = join(dir, `${hex}.gc-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await rename(path, aside);
    return aside;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return aside;
    throw err;
  }
}

/** Layer cache entries of unneeded diffIDs or blobs, and temp files of dead writers. */
async function removeUnusedLayerCaches(store: BlobStore, roots: Roots): Promise<number> {
  let removed = 0;
  for (const { dir: sub, key } of LAYER_CACHE_DIRS) {
    const dir = store.dir(sub);
    const kept = key === "diffID" ? roots.diffIDs : roots.blobs;
    for (const name of await readdirOrEmpty(dir)) {
      const m = /^([0-9a-f]{64})\.json(?:\.(\d+)\.tmp)?$/.exec(name);
      if (!m) continue;
      const stale = m[2] !== undefined ? Number(m[2]) !== process.pid && !isProcessAlive(Number(m[2])) : !kept.has(`sha256:${m[1]}`);
      if (stale && (await unlinkIfExists(join(dir, name)))) removed++;
    }
  }
  return removed;
}

/** tmp/ files (atomic-write temps) whose writer died, or older than a day. */
async function removeDeadTemps(dir: string): Promise<number> {
  let removed = 0;
  const now = Date.now();
  for (const name of await readdirOrEmpty(dir)) {
    const pid = tempNamePid(name);
    const path = join(dir, name);
    let dead = pid !== undefined && pid !== process.pid && !isProcessAlive(pid);
    if (!dead) {
      const st = await stat(path).catch(() => undefined);
      dead = st !== undefined && st.isFile() && now - st.mtimeMs > TEMP_MAX_AGE_MS;
    }
    if (dead && (await unlinkIfExists(path).catch(() => false))) removed++;
  }
  return removed;
}


export interface PruneOptions extends GcOptions {
  /** Delete every record (`--all`). */
  all?: boolean;
  /** Delete least recently used records until the blobs still needed fit in this many bytes. */
  keepStorage?: number;
  /** Only records unused for longer than this many milliseconds may go (`--filter until=24h`). */
  until?: number;
  /** The clock (tests). */
  now?: number;
}

export interface PruneResult {
  removedRecords: CacheRecord[];
  /** Bytes of blobs needed by tags, leases and the remaining records, after pruning. */
  keptBytes: number;
  gc: GcResult;
}

/**
 * Prunes cache records, then collects garbage. Candidates are every record with `all`, the records unused for
 * longer than `until`, or (with neither) every record when `keepStorage` is set, else only broken records
 * (whose blobs are neither local nor fetchable). With `keepStorage`, candidates go least recently used first
 * and only until the needed blobs fit the budget; a blob shared by several records frees space only with the
 * last of them. Deleting a record a running build uses only means a rebuild later; leased blobs stay.
 */
export async function pruneCache(store: BlobStore, options: PruneOptions = {}): Promise<PruneResult> {
  const now = options.now ?? Date.now();
  const index = await CacheIndex.open(store);
  const remote = await RemoteBlobIndex.open(store);
  const records: CacheRecord[] = [];
  for await (const r of index.list()) records.push(r);

  const pinned = await tagRoots(store);
  addLeaseRoots(await readLeases(store, options.leases), pinned);
  // Sizes are counted per stored file: a composite stands for its parts (shared parts count once).
  const composites = new Map<Digest, Digest[]>();
  for await (const c of store.listComposites()) composites.set(c.digest, c.parts.map((p) => p.digest));
  const stored = (digests: Iterable<Digest>): Set<Digest> => new Set([...digests].flatMap((d) => composites.get(d) ?? [d]));
  const sizes = new Map<Digest, number>();
  const refs = new Map<Digest, number>();
  for (const r of records) {
    for (const d of stored(recordBlobs(r))) {
      refs.set(d, (refs.get(d) ?? 0) + 1);
      if (!sizes.has(d)) sizes.set(d, (await store.stat(d))?.size ?? 0);
    }
  }
  const pinnedStored = stored(pinned.blobs);
  for (const d of pinnedStored) if (!sizes.has(d)) sizes.set(d, (await store.stat(d))?.size ?? 0);
  let kept = 0;
  for (const [, size] of sizes) kept += size;

  let candidates: CacheRecord[];
  if (options.all) candidates = records;
  else if (options.until !== undefined) candidates = records.filter((r) => now - Date.parse(r.lastUsedAt) > options.until!);
  else if (options.keepStorage !== undefined) candidates = records;
  else {
    candidates = [];
    for (const r of records) {
      for (const d of r.blobs) {
        if (!(await remote.isAvailable(d))) {
          candidates.push(r);
          break;
        }
      }
    }
  }
  candidates.sort((a, b) => a.lastUsedAt.localeCompare(b.lastUsedAt));

  const removed: CacheRecord[] = [];
  for (const r of candidates) {
    options.signal?.throwIfAborted();
    if (options.keepStorage !== undefined && kept <= options.keepStorage) break;
    await index.delete(r.key);
    removed.push(r);
    for (const d of stored(recordBlobs(r))) {
      const left = (refs.get(d) ?? 1) - 1;
      refs.set(d, left);
      if (left === 0 && !pinnedStored.has(d)) kept -= sizes.get(d) ?? 0;
    }
  }
  const gc = await collectGarbage(store, options);
  return { removedRecords: removed, keptBytes: kept, gc };
}
