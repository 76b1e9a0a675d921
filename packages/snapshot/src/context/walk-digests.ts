// Entry digests of a walked context, by walk index: files from the stat cache (matched to the walk
// in one merge pass) or by reading them, everything else from its metadata. Working on the walk's
// columns keeps a one-file-changed rebuild of a 20k-file context free of per-path objects and maps.
import { join } from "node:path";
import { EMPTY_SHA256, digestOfEntryInput, entryDigestInputOf, hashFileContentSync, treeDigestOfColumns } from "./hash.js";
import { RAW_FIELDS, R_GID, R_MODE, R_RDEV, R_SIZE, R_UID, S_IFMT, S_IFREG } from "./raw-fields.js";
import type { WalkMatch, WalkSource } from "./resolve.js";
import type { StatCache } from "./stat-cache.js";
import { ROOT, type WalkIndex } from "./walk-index.js";

const HASH_CHUNK = 256 * 1024;

export class WalkDigests {
  /** Entry digest per walk index, once known (read-only for others: PathDigests reads it directly). */
  readonly digests: (string | undefined)[];
  private rootDigest: string | undefined;
  /** Digests by digest input: most directories (and all empty files alike) share one. */
  private readonly byInput = new Map<string, string>();
  /** The stat cache row of each walk index (align()), made on first use. */
  private rows: Int32Array | undefined;
  private buf: Buffer | undefined;

  constructor(
    private readonly walk: WalkIndex,
    /** The context directory (absolute). */
    private readonly dir: string,
    private readonly cache: () => StatCache,
    private readonly onContentRead: ((path: string) => void) | undefined,
  ) {
    this.digests = new Array<string | undefined>(walk.size);
  }

  /**
   * Fills in the digests of the files of `sources` the stat cache vouches for and returns those that
   * must be read (walk indices), for readFile.
   */
  pending(sources: readonly WalkSource[]): number[] {
    const todo: number[] = [];
    const walk = this.walk;
    const nums = walk.nums;
    for (const src of sources) {
      for (const m of src.matches) {
        if (m.end - m.index > 1) {
          // Bulk first (a rebuild's common case: nearly every file's digest is cached), then the rest.
          const cache = this.cache();
          this.rows ??= cache.align(walk.paths, nums, walk.pathsDigest);
          cache.fillEntryDigests(this.rows, nums, m.index, m.end, this.digests);
        }
        for (let k = m.index < 0 ? 0 : m.index; k < m.end; k++) {
          if (this.digests[k] === undefined && ((nums[k * RAW_FIELDS + R_MODE] as number) & S_IFMT) === S_IFREG && !this.fromCache(k)) todo.push(k);
        }
      }
    }
    return todo;
  }

  /** Reads and hashes file k (an index pending() returned) and records it in the stat cache. */
  readFile(k: number): void {
    if (this.digests[k] !== undefined) return; // listed twice (overlapping sources)
    const path = this.walk.path(k);
    const started = Date.now();
    this.onContentRead?.(path);
    this.buf ??= Buffer.allocUnsafe(HASH_CHUNK);
    const sha = hashFileContentSync(join(this.dir, path), this.buf);
    const digest = this.fileDigest(k, sha);
    this.digests[k] = digest;
    this.cache().recordAt(path, this.walk.nums, k * RAW_FIELDS, sha, started, digest, this.rows?.[k]);
  }

  /** The entry digest of walk index k (ROOT for the root); a file's must be known (pending/readFile). */
  digestOf(k: number): string {
    if (k === ROOT) return (this.rootDigest ??= this.metaDigest(k));
    let d = this.digests[k];
    if (d === undefined) {
      if (this.walk.isFile(k)) throw new Error(`internal: no digest for ${this.walk.path(k)}`);
      d = this.metaDigest(k);
      this.digests[k] = d;
    }
    return d;
  }

  /** A match's digest: its entry's, or for a directory the tree of everything below it. */
  matchDigest(m: WalkMatch): string {
    if (!this.walk.isDir(m.index)) return this.digestOf(m.index);
    for (let k = m.index + 1; k < m.end; k++) if (this.digests[k] === undefined) this.digestOf(k);
    return treeDigestOfColumns(this.digestOf(m.index), this.walk.paths, this.digests as readonly string[], m.index + 1, m.end, m.cut);
  }

  /** Sets file k's digest from the stat cache if it can; false if the file must be read. */
  private fromCache(k: number): boolean {
    const nums = this.walk.nums;
    const o = k * RAW_FIELDS;
    if (nums[o + R_SIZE] === 0) {
      this.digests[k] = this.inputDigest(this.fileInput(k, EMPTY_SHA256));
      return true;
    }
    const cache = this.cache();
    this.rows ??= cache.align(this.walk.paths, nums, this.walk.pathsDigest);
    const row = this.rows[k] as number;
    const path = this.walk.path(k);
    const cached = cache.entryDigestAt(row, path, nums, o);
    if (cached !== undefined) {
      this.digests[k] = cached;
      return true;
    }
    const sha = cache.sha256At(row, path, nums, o);
    if (sha === undefined) return false;
    // Content unchanged, metadata changed (or no entry digest yet): digest it and cache that too.
    const digest = this.fileDigest(k, sha);
    this.digests[k] = digest;
    cache.recordAt(path, nums, o, sha, Date.now(), digest, row);
    return true;
  }

  private fileDigest(k: number, sha: string): string {
    return digestOfEntryInput(this.fileInput(k, sha));
  }

  private fileInput(k: number, sha: string): string {
    const nums = this.walk.nums;
    const o = k * RAW_FIELDS;
    const rawMode = nums[o + R_MODE] as number;
    return entryDigestInputOf("file", rawMode & 0o7777, rawMode, nums[o + R_UID] as number, nums[o + R_GID] as number, nums[o + R_RDEV] as number, undefined, sha);
  }

  private metaDigest(k: number): string {
    if (k === ROOT) {
      const r = this.walk.root;
      return this.inputDigest(entryDigestInputOf(r.type, r.mode, r.rawMode, r.uid, r.gid, r.rdev, r.linkname, undefined));
    }
    const nums = this.walk.nums;
    const o = k * RAW_FIELDS;
    const rawMode = nums[o + R_MODE] as number;
    const input = entryDigestInputOf(
      this.walk.type(k),
      rawMode & 0o7777,
      rawMode,
      nums[o + R_UID] as number,
      nums[o + R_GID] as number,
      nums[o + R_RDEV] as number,
      this.walk.linkname(k),
      undefined,
    );
    return this.inputDigest(input);
  }

  private inputDigest(input: string): string {
    let d = this.byInput.get(input);
    if (d === undefined) {
      d = digestOfEntryInput(input);
      this.byInput.set(input, d);
    }
    return d;
  }
}
