// Lookup over a raw walk (paths + lstat number columns) by index, without an entry object or a map
// entry per path: the walk is comparePaths-sorted, so a path is found by binary search, a directory's
// contents are the contiguous run after it, and lookups made in walk order hit a cursor in O(1).
// Entry objects are made only for the indices someone asks for.
import { createHash } from "node:crypto";
import { type ContextEntry, type EntryType, comparePaths } from "./entry.js";
import { entryFromRaw } from "./fast-lstat.js";
import { RAW_FIELDS, R_MTIME, S_IFDIR, S_IFLNK, S_IFREG, rawFormat } from "./raw-fields.js";
import { followLinks } from "./tree.js";
import type { RawWalk } from "./walk.js";

/** The index of the context root itself (not in the walk). */
export const ROOT = -1;

export class WalkIndex {
  /** Number of walked paths (the root excluded). */
  readonly size: number;
  readonly paths: readonly string[];
  /** RAW_FIELDS numbers per path (see raw-fields.ts). */
  readonly nums: Float64Array;
  private readonly links: ReadonlyMap<number, string>;
  private readonly entryCache: (ContextEntry | undefined)[];
  private materialized = 0;
  /** The last index found: the next lookup tries it and its successor first. */
  private cursor = 0;
  private joinedValue: string | undefined;
  private pathsDigestValue: Buffer | undefined;

  constructor(
    readonly root: ContextEntry,
    walk: RawWalk,
  ) {
    this.size = walk.paths.length;
    this.paths = walk.paths;
    this.nums = walk.nums;
    this.links = walk.links;
    this.joinedValue = walk.joined;
    this.entryCache = new Array<ContextEntry | undefined>(this.size);
  }

  /** The paths joined by NUL (which no name contains), made once: fingerprints and stat cache checks share it. */
  get joinedPaths(): string {
    this.joinedValue ??= this.paths.join("\0");
    return this.joinedValue;
  }

  /** sha256 of joinedPaths: names this exact path list. */
  get pathsDigest(): Buffer {
    this.pathsDigestValue ??= createHash("sha256").update(`${this.size}\0`).update(this.joinedPaths).digest();
    return this.pathsDigestValue;
  }

  /** The index of `path` (ROOT for ""), or undefined when it is not in the walk. `path` must be clean. */
  indexOf(path: string): number | undefined {
    if (path === "") return ROOT;
    const paths = this.paths;
    const c = this.cursor;
    if (paths[c] === path) return c;
    if (paths[c + 1] === path) return (this.cursor = c + 1);
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = comparePaths(paths[mid] as string, path);
      if (cmp === 0) return (this.cursor = mid);
      if (cmp < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  path(i: number): string {
    return i === ROOT ? "" : (this.paths[i] as string);
  }

  type(i: number): EntryType {
    if (i === ROOT) return this.root.type;
    const f = rawFormat(this.nums, i * RAW_FIELDS);
    return f === S_IFREG ? "file" : f === S_IFDIR ? "dir" : f === S_IFLNK ? "symlink" : "other";
  }

  isFile(i: number): boolean {
    return i !== ROOT && rawFormat(this.nums, i * RAW_FIELDS) === S_IFREG;
  }

  isDir(i: number): boolean {
    return i === ROOT ? this.root.type === "dir" : rawFormat(this.nums, i * RAW_FIELDS) === S_IFDIR;
  }

  /** The symlink target of entry i (undefined unless it is a symlink). */
  linkname(i: number): string | undefined {
    return i === ROOT ? this.root.linkname : this.links.get(i);
  }

  /** One past the last index below entry i: its contents are (i, end). */
  subtreeEnd(i: number): number {
    if (i === ROOT) return this.size;
    if (!this.isDir(i)) return i + 1;
    const prefix = `${this.paths[i] as string}/`;
    let end = i + 1;
    while (end < this.size && (this.paths[end] as string).startsWith(prefix)) end++;
    return end;
  }

  /** The newest mtime of entry i and its subtree, from the columns. */
  newestMtimeMs(i: number): number {
    let newest = i === ROOT ? this.root.mtimeMs : (this.nums[i * RAW_FIELDS + R_MTIME] as number);
    for (let k = i + 1, end = this.subtreeEnd(i); k < end; k++) {
      const m = this.nums[k * RAW_FIELDS + R_MTIME] as number;
      if (m > newest) newest = m;
    }
    return newest;
  }

  /** Entry i as an object (made once per index). */
  entry(i: number): ContextEntry {
    if (i === ROOT) return this.root;
    let e = this.entryCache[i];
    if (e === undefined) {
      e = entryFromRaw(this.paths[i] as string, this.nums, i * RAW_FIELDS, this.links.get(i));
      this.entryCache[i] = e;
      this.materialized++;
    }
    return e;
  }

  /** Entry i as a new object, not kept (entry(i) keeps the one it makes). */
  freshEntry(i: number): ContextEntry {
    if (i === ROOT) return this.root;
    return this.entryCache[i] ?? entryFromRaw(this.paths[i] as string, this.nums, i * RAW_FIELDS, this.links.get(i));
  }

  /** Every walked entry (the root excluded) in walk order. */
  entries(): ContextEntry[] {
    if (this.materialized < this.size) for (let i = 0; i < this.size; i++) this.entry(i);
    return this.entryCache as ContextEntry[];
  }

  /**
   * Resolves `path` inside the context like BuildKit's getFollowLinks (see followLinks): symlinks can
   * never lead outside the root. Returns the index reached, or undefined when nothing is there.
   */
  resolve(path: string, followTrailing: boolean): { path: string; index: number } | undefined {
    const resolved = followLinks(path, followTrailing, (p) => {
      const i = this.indexOf(p);
      return i !== undefined && this.type(i) === "symlink" ? (this.linkname(i) ?? "") : undefined;
    });
    const index = this.indexOf(resolved);
    return index === undefined ? undefined : { path: resolved, index };
  }
}
