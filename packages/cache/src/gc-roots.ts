// What keeps blobs alive: tags (manifest → config + layers, index → manifests), cache records (their blobs
// and files index), and live leases. Also the layer diffIDs those need, for unpacked-layer and listing dirs.
import type { BlobStore } from "./blob-store.js";
import { CacheIndex, type CacheRecord } from "./cache-index.js";
import { isDigest, type Digest } from "./digest.js";
import { BlobNotFoundError } from "./errors.js";
import { readLeases, type LeaseInfo, type ReadLeasesOptions } from "./lease.js";
import { TagStore } from "./tag-store.js";

export interface Roots {
  /** Blobs that must stay. */
  blobs: Set<Digest>;
  /** DiffIDs whose unpacked layers and listings must stay. */
  diffIDs: Set<Digest>;
}

/** Manifests and indexes are small; anything bigger is not walked as JSON. */
const MAX_WALK_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 8;

interface WalkedJson {
  manifests?: { digest?: unknown }[];
  config?: { digest?: unknown };
  layers?: { digest?: unknown }[];
  rootfs?: { diff_ids?: unknown[] };
}

export function emptyRoots(): Roots {
  return { blobs: new Set(), diffIDs: new Set() };
}

/** Adds a tagged manifest/index and everything it references (present blobs only; missing ones are skipped). */
export async function addImageRoots(store: BlobStore, digest: Digest, roots: Roots, depth = 0): Promise<void> {
  if (roots.blobs.has(digest) && depth > 0) return;
  roots.blobs.add(digest);
  if (depth > MAX_DEPTH) return;
  const doc = await readSmallJson(store, digest);
  if (!doc) return;
  for (const m of doc.manifests ?? []) if (isDigest(m.digest)) await addImageRoots(store, m.digest, roots, depth + 1);
  if (isDigest(doc.config?.digest)) {
    roots.blobs.add(doc.config.digest);
    const config = await readSmallJson(store, doc.config.digest);
    for (const id of config?.rootfs?.diff_ids ?? []) if (isDigest(id)) roots.diffIDs.add(id);
  }
  for (const l of doc.layers ?? []) if (isDigest(l.digest)) roots.blobs.add(l.digest);
}

async function readSmallJson(store: BlobStore, digest: Digest): Promise<WalkedJson | undefined> {
  const st = await store.stat(digest);
  if (!st || st.size > MAX_WALK_BYTES) return undefined;
  try {
    const v: unknown = JSON.parse((await store.readBytes(digest)).toString("utf8"));
    return typeof v === "object" && v !== null ? (v as WalkedJson) : undefined;
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof BlobNotFoundError) return undefined;
    throw err;
  }
}

/** Digests a cache record keeps alive: its blobs and its COPY files index. */
export function recordBlobs(record: CacheRecord): Digest[] {
  const out = [...record.blobs];
  const filesIndex = record.inputs.filesIndex;
  if (isDigest(filesIndex)) out.push(filesIndex);
  return out;
}

/** The diffID of the layer a record produced, when its result says (the engine stores `result.layer`). */
export function recordDiffID(record: CacheRecord): Digest | undefined {
  const result = record.result;
  if (typeof result !== "object" || result === null) return undefined;
  const layer = (result as { layer?: { diffID?: unknown } }).layer;
  return isDigest(layer?.diffID) ? layer.diffID : undefined;
}

export function addRecordRoots(record: CacheRecord, roots: Roots): void {
  for (const d of recordBlobs(record)) roots.blobs.add(d);
  const diffID = recordDiffID(record);
  if (diffID) roots.diffIDs.add(diffID);
}

/** Lease digests may name blobs or diffIDs; both sets take them. */
export function addLeaseRoots(leases: LeaseInfo[], roots: Roots): void {
  for (const lease of leases) {
    if (!lease.alive) continue;
    for (const d of lease.digests) {
      roots.blobs.add(d);
      roots.diffIDs.add(d);
    }
  }
}

export async function tagRoots(store: BlobStore, roots: Roots = emptyRoots()): Promise<Roots> {
  const tags = await TagStore.open(store);
  for (const entry of await tags.list()) await addImageRoots(store, entry.descriptor.digest, roots);
  return roots;
}

/** Tags + records + live leases. */
export async function collectRoots(store: BlobStore, options: { leases?: ReadLeasesOptions; signal?: AbortSignal } = {}): Promise<Roots> {
  const roots = await tagRoots(store);
  const index = await CacheIndex.open(store);
  for await (const record of index.list()) {
    options.signal?.throwIfAborted();
    addRecordRoots(record, roots);
  }
  addLeaseRoots(await readLeases(store, options.leases), roots);
  return roots;
}
