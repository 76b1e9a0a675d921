import { closeSync, fstatSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { digestHex, isDigest, parseDigest, type Digest } from "./digest.js";
import { isErrno, readdirOrEmpty, unlinkIfExists, writeFileAtomic } from "./fs-util.js";

/** What a cache key was derived from; kept so a later miss can be explained by diffing inputs. */
export interface CacheKeyInputs {
  instruction: string;
  buildArgs: Record<string, string>;
  files?: Record<string, string>;
  base?: string;
  [k: string]: unknown;
}

export interface CacheRecord<R = unknown> {
  /** The step's cache key. */
  key: Digest;
  /** Key of the previous step; null for the base. */
  parent: Digest | null;
  inputs: CacheKeyInputs;
  /** Opaque to the index (layer descriptor, config after the step, ...). */
  result: R;
  createdAt: string;
  lastUsedAt: string;
  /** Blobs this record keeps alive (for GC). */
  blobs: Digest[];
}

export type NewCacheRecord<R = unknown> = Omit<CacheRecord<R>, "createdAt" | "lastUsedAt">;

/** children/ entry name for records whose parent is null (cannot collide with a 64-hex key). */
const ROOT_PARENT = "root";

/**
 * Cache key → step result. One JSON file per record at index/records/<hex[0:2]>/<hex>.json (atomic writes),
 * plus an empty marker index/children/<parent hex|root>/<child hex> per record so children() reads one
 * directory instead of scanning everything. lastUsedAt is refreshed with utimes() (see touch()).
 */
export class CacheIndex {
  readonly #recordsDir: string;
  readonly #childrenDir: string;
  readonly #tmpDir: string;

  private constructor(store: BlobStore) {
    const indexDir = store.dir("index");
    this.#recordsDir = join(indexDir, "records");
    this.#childrenDir = join(indexDir, "children");
    this.#tmpDir = store.dir("tmp");
  }

  static async open(store: BlobStore): Promise<CacheIndex> {
    const index = new CacheIndex(store);
    for (const d of [index.#recordsDir, index.#childrenDir, index.#tmpDir]) mkdirSync(d, { recursive: true }); // exist after the first build
    return index;
  }

  /** The record for `key`, or undefined on a miss (unreadable or malformed files also count as misses). */
  async get<R>(key: Digest): Promise<CacheRecord<R> | undefined> {
    return this.#read<R>(this.#recordPath(key), key);
  }

  /** Stores a record (replacing any with the same key, whose createdAt is kept). */
  async put<R>(record: NewCacheRecord<R>): Promise<CacheRecord<R>> {
    const key = parseDigest(record.key);
    const parent = record.parent === null ? null : parseDigest(record.parent);
    const blobs = record.blobs.map((b) => parseDigest(b));
    const existing = await this.get<R>(key);
    const nowDate = new Date();
    const now = nowDate.toISOString();
    const full: CacheRecord<R> = {
      key,
      parent,
      inputs: record.inputs,
      result: record.result,
      createdAt: existing?.createdAt ?? now,
      lastUsedAt: now,
      blobs,
    };
    // Marker first: a crash in between leaves a dangling marker (skipped and pruned by children()),
    // never a record that children() cannot find.
    const markerDir = this.#markerDir(parent);
    await mkdir(markerDir, { recursive: true });
    await writeFile(join(markerDir, digestHex(key)), "");
    const path = this.#recordPath(key);
    await mkdir(join(path, ".."), { recursive: true });
    // mtime = lastUsedAt, so the mtime that touch() maintains never disagrees with a fresh record.
    await writeFileAtomic(path, JSON.stringify(full), { tmpDir: this.#tmpDir, mtime: nowDate });
    if (existing && existing.parent !== parent) await unlinkIfExists(join(this.#markerDir(existing.parent), digestHex(key)));
    return full;
  }

  /** Marks a record as used now. One utimes() call; a missing record is ignored (it may have been GC'd). */
  async touch(key: Digest): Promise<void> {
    const now = new Date();
    try {
      await utimes(this.#recordPath(key), now, now);
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
    }
  }

  /** Records whose parent is `parent`, most recently used first. */
  async children(parent: Digest | null): Promise<CacheRecord[]> {
    if (parent !== null) parseDigest(parent);
    const markerDir = this.#markerDir(parent);
    let names: string[];
    try {
      names = await readdir(markerDir);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return [];
      throw err;
    }
    const out: CacheRecord[] = [];
    for (const name of names) {
      const key = `sha256:${name}`;
      if (!isDigest(key)) continue;
      const rec = await this.get(key);
      if (rec === undefined) {
        await unlinkIfExists(join(markerDir, name));
      } else if (rec.parent === parent) {
        out.push(rec);
      }
    }
    return out.sort((a, b) => b.lastUsedAt.localeCompare(a.lastUsedAt));
  }

  async *list(): AsyncIterable<CacheRecord> {
    for (const shard of await readdirOrEmpty(this.#recordsDir)) {
      for (const name of await readdirOrEmpty(join(this.#recordsDir, shard))) {
        const key = `sha256:${name.replace(/\.json$/, "")}`;
        if (!name.endsWith(".json") || !isDigest(key)) continue;
        const rec = await this.#read(join(this.#recordsDir, shard, name), key);
        if (rec) yield rec;
      }
    }
  }

  /** Removes a record and its children marker; missing records are fine. */
  async delete(key: Digest): Promise<void> {
    const existing = await this.get(key);
    await unlinkIfExists(this.#recordPath(key));
    if (existing) await unlinkIfExists(join(this.#markerDir(existing.parent), digestHex(key)));
  }

  #recordPath(key: Digest): string {
    const hex = digestHex(key);
    return join(this.#recordsDir, hex.slice(0, 2), `${hex}.json`);
  }

  #markerDir(parent: Digest | null): string {
    return join(this.#childrenDir, parent === null ? ROOT_PARENT : digestHex(parent));
  }

  // Synchronous: a record is a small file, and a cached build reads one per step (four thread-pool round
  // trips each through the promise API).
  async #read<R>(path: string, key: Digest): Promise<CacheRecord<R> | undefined> {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
    try {
      const st = fstatSync(fd);
      const text = readFileSync(fd, "utf8");
      const rec = parseRecord<R>(text, key);
      if (rec === undefined) return undefined;
      // touch() only bumps the file's mtime, so the later of the two is the real last use.
      const touched = new Date(st.mtimeMs).toISOString();
      if (touched > rec.lastUsedAt) rec.lastUsedAt = touched;
      return rec;
    } finally {
      closeSync(fd);
    }
  }
}

function parseRecord<R>(text: string, key: Digest): CacheRecord<R> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Partial<CacheRecord<R>>;
  const ok =
    r.key === key &&
    (r.parent === null || isDigest(r.parent)) &&
    typeof r.inputs === "object" && r.inputs !== null &&
    typeof r.createdAt === "string" &&
    typeof r.lastUsedAt === "string" &&
    Array.isArray(r.blobs) && r.blobs.every(isDigest);
  return ok ? (r as CacheRecord<R>) : undefined;
}

