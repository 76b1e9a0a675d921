// Persisted index from (path, size, mtime, ctime, inode, device) to a file's content sha256
// and entry digest, so an unchanged context is re-digested from lstat alone (like git's index).
//
// On-disk format (v4), built so a 20k-file cache loads in a few ms with few allocations:
//   header line | u32 row count | u32 paths byte length | 32-byte walk digest | pad to 8 |
//   float64[count * NUMS] (size, mtimeMs, ctimeMs, ino, dev, st_mode, uid, gid; st_mode = -1 and no
//   entry digest when recorded without metadata) | int32[count] walk index |
//   count * 64 ASCII hex (content sha256) | count * 64 ASCII hex (entry digest or 64 "-") |
//   count racy flags | NUL-joined UTF-8 paths.
// Nothing is decoded per row at load: the numbers are read in place, the hex columns are sliced out
// of one string per column, and the paths are split only if a lookup by path needs them. Rows are in
// comparePaths order (a walk's order), so a path is found by binary search. A cache saved by a build
// records the digest of that build's walk path list and each row's index in it: the next build whose
// walk has the same paths (a rebuild where files changed but none was added or removed) maps rows to
// its walk by those indices without touching a path string; otherwise one merge pass over both
// sorted lists (align) does it. A version 2 file (an older kiln: unordered, no walk columns) still
// loads, through a Map.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { comparePaths } from "./entry.js";
import { ENTRY_DIGEST_FORMAT } from "./hash.js";
import { RAW_FIELDS, R_CTIME, R_DEV, R_GID, R_INO, R_MODE, R_MTIME, R_SIZE, R_UID, S_IFMT, S_IFREG } from "./raw-fields.js";

/** save({ deferSmall }) leaves at most this many recorded rows, of at most this many bytes, unwritten. */
const DEFER_MAX_ROWS = 64;
const DEFER_MAX_BYTES = 8 << 20;

/** The lstat fields that must be unchanged for a cached content hash to be trusted. */
export interface StatKey {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
}

/** A StatKey plus the metadata an entry digest covers besides content. */
export interface EntryStatKey extends StatKey {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Files whose mtime/ctime is this close to (or after) the moment hashing started are
 * "racy": a later write in the same timestamp tick would leave the key unchanged, so they
 * are stored but always re-hashed (git's racy-clean rule; 1 s covers coarse filesystems).
 */
export const DEFAULT_RACY_WINDOW_MS = 1000;

/**
 * Bump when the layout changes; the entry digest format is part of the header too. Version 4 has
 * version 2's layout (but a regular file's st_mode where it kept permission bits) and promises rows in
 * strict comparePaths order; a version 2 file (unordered)
 * is still read, so an upgrade does not rehash every file.
 */
// Version 5 is version 4's layout followed by a sha256 of everything before it: a damaged file (a flipped
// byte in a stored hash would otherwise give a wrong digest) is then detected and ignored.
const HEADER = Buffer.from(`kiln-statcache 5 ${ENTRY_DIGEST_FORMAT}\n`, "latin1");
const CHECKSUM = 32;
const HEADER_V2 = Buffer.from(`kiln-statcache 2 ${ENTRY_DIGEST_FORMAT}\n`, "latin1");
/** Bytes of the walk digest (a sha256). */
const WALK_DIGEST = 32;
const NO_WALK = Buffer.alloc(WALK_DIGEST);
const NUMS = 8;
const HEX = 64;
const NO_DIGEST = "-".repeat(HEX);

interface Row {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
  /** -1 when recorded without entry metadata (then no entry digest is cached). */
  mode: number;
  uid: number;
  gid: number;
  sha256: string;
  /** "" when unknown. */
  entryDigest: string;
  racy: boolean;
}

/** The rows of a loaded cache file, read in place; rows replaced or pruned since are marked dropped. */
class LoadedRows {
  private readonly dropped: Uint8Array;
  private droppedCount = 0;
  private indexValue: Map<string, number> | undefined;
  private pathsValue: readonly string[] | undefined;

  /** `nums` as int32 pairs, for bitwise comparison. */
  private readonly ints: Int32Array;

  constructor(
    readonly count: number,
    /** The NUL-joined paths, split on first use. */
    private readonly pathsText: string,
    /** Whether the paths are in strict comparePaths order (then lookups are binary searches). */
    readonly sorted: boolean,
    /** The digest of the walk the rows were saved from and each row's index in it (v4), else undefined. */
    private readonly walk: { digest: Buffer; index: Int32Array } | undefined,
    private readonly nums: Float64Array,
    private readonly shas: string,
    private readonly digests: string,
    private readonly racy: Uint8Array,
    /** The file's bytes and column offsets, so save() can copy unchanged rows verbatim. */
    private readonly buf: Buffer,
    private readonly layout: Layout,
  ) {
    this.dropped = new Uint8Array(this.count);
    this.ints = new Int32Array(nums.buffer, nums.byteOffset, nums.length * 2);
  }

  static empty(): LoadedRows {
    return new LoadedRows(0, "", true, undefined, new Float64Array(0), "", "", new Uint8Array(0), Buffer.alloc(0), layoutFor(0, true));
  }

  /** Row paths; a path list that does not match the row count (a corrupt file) leaves no live row. */
  get paths(): readonly string[] {
    if (!this.pathsValue) {
      const paths = this.count === 0 ? [] : this.pathsText.split("\0");
      if (paths.length === this.count) this.pathsValue = paths;
      else {
        this.pathsValue = new Array<string>(this.count).fill("");
        for (let i = 0; i < this.count; i++) this.drop(i);
      }
    }
    return this.pathsValue;
  }

  get live(): number {
    return this.count - this.droppedCount;
  }

  /** The live row of `path`, if any. */
  find(path: string): number | undefined {
    let i: number | undefined;
    if (this.sorted) i = sortedIndexOf(this.paths, path);
    else {
      if (!this.indexValue) {
        // Unsorted (an older writer): the last row of a path wins, as a Map built in file order did.
        this.indexValue = new Map();
        for (let k = 0; k < this.count; k++) this.indexValue.set(this.paths[k] as string, k);
      }
      i = this.indexValue.get(path);
    }
    return i === undefined || this.dropped[i] === 1 ? undefined : i;
  }

  isLive(i: number): boolean {
    return this.dropped[i] !== 1;
  }

  drop(i: number): void {
    if (this.dropped[i] === 1) return;
    this.dropped[i] = 1;
    this.droppedCount++;
  }

  /** Live rows in comparePaths order. */
  liveOrder(): number[] {
    const out: number[] = [];
    if (this.sorted) {
      for (let i = 0; i < this.count; i++) if (this.dropped[i] !== 1) out.push(i);
      return out;
    }
    for (let i = 0; i < this.count; i++) if (this.dropped[i] !== 1 && this.find(this.paths[i] as string) === i) out.push(i);
    return out.sort((a, b) => comparePaths(this.paths[a] as string, this.paths[b] as string));
  }

  /**
   * See StatCache.align; drops the rows no walked file matched. `identical` is set when the rows were
   * saved from a walk with this path list (walkDigest), so they map by their recorded indices.
   */
  align(walkPaths: readonly string[], walkNums: Float64Array, walkDigest: Buffer): { rows: Int32Array; identical: boolean } {
    const n = walkPaths.length;
    const rows = new Int32Array(n).fill(-1);
    if (this.walk && this.walk.digest.equals(walkDigest)) {
      const index = this.walk.index;
      const dropped = this.dropped;
      for (let i = 0; i < this.count; i++) {
        const k = index[i] as number;
        // (A row whose path is no longer a file is never trusted: its st_mode differs. save() drops it.)
        if (dropped[i] !== 1 && k >= 0 && k < n) rows[k] = i;
      }
      return { rows, identical: true };
    }
    const used = new Uint8Array(this.count);
    const paths = this.paths;
    const count = this.count;
    if (this.sorted) {
      // One merge pass (both lists are in comparePaths order); equal paths are the common case.
      let j = 0;
      for (let i = 0; i < n && j < count; i++) {
        const p = walkPaths[i] as string;
        if (paths[j] !== p) {
          while (j < count && comparePaths(paths[j] as string, p) < 0) j++;
          if (j === count || paths[j] !== p) continue;
        }
        if (((walkNums[i * RAW_FIELDS + R_MODE] as number) & S_IFMT) === S_IFREG && this.dropped[j] !== 1) {
          rows[i] = j;
          used[j] = 1;
        }
        j++;
      }
    } else {
      for (let i = 0; i < n; i++) {
        if (((walkNums[i * RAW_FIELDS + R_MODE] as number) & S_IFMT) !== S_IFREG) continue;
        const j = this.find(walkPaths[i] as string);
        if (j === undefined) continue;
        rows[i] = j;
        used[j] = 1;
      }
    }
    for (let j = 0; j < count; j++) if (used[j] === 0) this.drop(j);
    return { rows, identical: false };
  }

  /** See StatCache.fillEntryDigests. */
  fillEntryDigests(rows: Int32Array, walk: Float64Array, from: number, to: number, out: (string | undefined)[]): void {
    // The numbers are compared as bit patterns through int32 views: a cold loop reading float64s boxes
    // every value (~20 ms for 20k files before the JIT catches up), int32 reads allocate nothing. Equal
    // bits imply equal numbers; the reverse only fails for NaN (never an lstat value) and -0, which
    // would merely mean a re-read.
    const n = this.ints;
    const w = new Int32Array(walk.buffer, walk.byteOffset, walk.length * 2);
    const racy = this.racy;
    const dropped = this.dropped;
    const digests = this.digests;
    for (let k = from < 0 ? 0 : from; k < to; k++) {
      const i = rows[k] as number;
      if (i < 0 || out[k] !== undefined || racy[i] === 1 || dropped[i] === 1) continue;
      const o = i * NUMS * 2;
      const x = k * RAW_FIELDS * 2;
      // Row: size, mtime, ctime, ino, dev | st_mode, uid, gid. Walk: st_mode, uid, gid | size .. dev.
      if (
        n[o] !== w[x + 6] ||
        n[o + 1] !== w[x + 7] ||
        n[o + 2] !== w[x + 8] ||
        n[o + 3] !== w[x + 9] ||
        n[o + 4] !== w[x + 10] ||
        n[o + 5] !== w[x + 11] ||
        n[o + 6] !== w[x + 12] ||
        n[o + 7] !== w[x + 13] ||
        n[o + 8] !== w[x + 14] ||
        n[o + 9] !== w[x + 15] ||
        n[o + 10] !== w[x] ||
        n[o + 11] !== w[x + 1] ||
        n[o + 12] !== w[x + 2] ||
        n[o + 13] !== w[x + 3] ||
        n[o + 14] !== w[x + 4] ||
        n[o + 15] !== w[x + 5] ||
        digests.charCodeAt(i * HEX) === 45 // "-": no entry digest recorded
      )
        continue;
      out[k] = `sha256:${digests.slice(i * HEX, i * HEX + HEX)}`;
    }
  }

  /** Copies rows i..i+n-1 into rows j.. of `out` without decoding them. */
  copyTo(i: number, n: number, out: Encoder, j: number): void {
    out.nums.set(this.nums.subarray(i * NUMS, (i + n) * NUMS), j * NUMS);
    const { shasAt, digestsAt, racyAt } = this.layout;
    this.buf.copy(out.buf, out.layout.shasAt + j * HEX, shasAt + i * HEX, shasAt + (i + n) * HEX);
    this.buf.copy(out.buf, out.layout.digestsAt + j * HEX, digestsAt + i * HEX, digestsAt + (i + n) * HEX);
    this.buf.copy(out.buf, out.layout.racyAt + j, racyAt + i, racyAt + i + n);
  }

  row(i: number): Row {
    const n = this.nums;
    const o = i * NUMS;
    const digest = this.digests.slice(i * HEX, i * HEX + HEX);
    return {
      size: n[o] as number,
      mtimeMs: n[o + 1] as number,
      ctimeMs: n[o + 2] as number,
      ino: n[o + 3] as number,
      dev: n[o + 4] as number,
      mode: (n[o + 5] as number) === -1 ? -1 : (n[o + 5] as number) & 0o7777,
      uid: n[o + 6] as number,
      gid: n[o + 7] as number,
      sha256: this.sha256(i),
      entryDigest: digest === NO_DIGEST ? "" : `sha256:${digest}`,
      racy: this.racy[i] === 1,
    };
  }

  sha256(i: number): string {
    return unpad(this.shas.slice(i * HEX, i * HEX + HEX));
  }

  /** Whether row i's lstat key equals `key` and it is not racy. */
  trusted(i: number, key: StatKey): boolean {
    const n = this.nums;
    const o = i * NUMS;
    return this.racy[i] !== 1 && n[o] === key.size && n[o + 1] === key.mtimeMs && n[o + 2] === key.ctimeMs && n[o + 3] === key.ino && n[o + 4] === key.dev;
  }

  /** trusted() against a raw walk's numbers at offset `w` (raw-fields.ts order). */
  trustedRaw(i: number, walk: Float64Array, w: number): boolean {
    const n = this.nums;
    const o = i * NUMS;
    return (
      this.racy[i] !== 1 &&
      n[o] === walk[w + R_SIZE] &&
      n[o + 1] === walk[w + R_MTIME] &&
      n[o + 2] === walk[w + R_CTIME] &&
      n[o + 3] === walk[w + R_INO] &&
      n[o + 4] === walk[w + R_DEV]
    );
  }

  /** Row i's entry digest if one was recorded with the mode and owner at `walk[w]` (the key is checked by the caller). */
  entryDigestRaw(i: number, walk: Float64Array, w: number): string | undefined {
    const n = this.nums;
    const o = i * NUMS;
    if (n[o + 5] !== walk[w + R_MODE] || n[o + 6] !== walk[w + R_UID] || n[o + 7] !== walk[w + R_GID]) return undefined;
    const digest = this.digests.slice(i * HEX, i * HEX + HEX);
    return digest === NO_DIGEST ? undefined : `sha256:${digest}`;
  }

  /** lookupEntry's answer for a trusted row, built without materializing the row (the hot path). */
  entry(i: number, key: EntryStatKey): { sha256: string; entryDigest: string | undefined } {
    const n = this.nums;
    const o = i * NUMS;
    const sha256 = this.sha256(i);
    if (n[o + 5] !== (S_IFREG | key.mode) || n[o + 6] !== key.uid || n[o + 7] !== key.gid) return { sha256, entryDigest: undefined };
    const digest = this.digests.slice(i * HEX, i * HEX + HEX);
    return { sha256, entryDigest: digest === NO_DIGEST ? undefined : `sha256:${digest}` };
  }
}

/** Index of `path` in comparePaths-sorted `paths`, or undefined. */
function sortedIndexOf(paths: readonly string[], path: string): number | undefined {
  let lo = 0;
  let hi = paths.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const cmp = comparePaths(paths[mid] as string, path);
    if (cmp === 0) return mid;
    if (cmp < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

export interface StatCacheOptions {
  racyWindowMs?: number;
}

export class StatCache {
  /** Rows from the file; a path moves to `changed` when it is recorded again. */
  private readonly loaded: LoadedRows;
  private readonly changed = new Map<string, Row>();
  /** The walk align() matched the rows to: save() records each row's index in it. */
  private walk: { paths: readonly string[]; nums: Float64Array; digest: Buffer; rows: Int32Array } | undefined;
  private dirty = false;
  /** Rows were dropped or the path list changed (not just a few rows recorded again). */
  private reshaped = false;
  private readonly racyWindowMs: number;

  private constructor(
    /** Where the cache is persisted; undefined for an in-memory cache. */
    readonly file: string | undefined,
    loaded: LoadedRows,
    opts: StatCacheOptions,
  ) {
    this.loaded = loaded;
    this.racyWindowMs = opts.racyWindowMs ?? DEFAULT_RACY_WINDOW_MS;
  }

  static inMemory(opts: StatCacheOptions = {}): StatCache {
    return new StatCache(undefined, LoadedRows.empty(), opts);
  }

  /** Loads `file`; a missing, unreadable, old-format or corrupt cache starts empty (it is only an accelerator). */
  static async load(file: string, opts: StatCacheOptions = {}): Promise<StatCache> {
    return StatCache.loadSync(file, opts);
  }

  /** load() without the promise (the file is small and read in one call). */
  static loadSync(file: string, opts: StatCacheOptions = {}): StatCache {
    let rows = LoadedRows.empty();
    try {
      rows = decode(readFileSync(file)) ?? rows;
    } catch {
      // start empty
    }
    return new StatCache(file, rows, opts);
  }

  get size(): number {
    return this.loaded.live + this.changed.size;
  }

  /** The cached content sha256 (hex) if `key` is unchanged and the entry is not racy. */
  lookup(path: string, key: StatKey): string | undefined {
    return this.trusted(path, key)?.sha256;
  }

  /**
   * The cached content sha256 and entry digest if the key is unchanged (and the entry is not
   * racy); entryDigest is undefined unless mode and owner are unchanged too and one was recorded.
   */
  lookupEntry(path: string, key: EntryStatKey): { sha256: string; entryDigest: string | undefined } | undefined {
    const i = this.loaded.find(path);
    if (i !== undefined) return this.loaded.trusted(i, key) ? this.loaded.entry(i, key) : undefined;
    const row = this.trusted(path, key);
    if (!row) return undefined;
    const sameMeta = row.mode === key.mode && row.uid === key.uid && row.gid === key.gid && row.entryDigest !== "";
    return { sha256: row.sha256, entryDigest: sameMeta ? row.entryDigest : undefined };
  }

  /** Whether `path` is stored as racy (undefined when not stored at all). */
  isRacy(path: string): boolean | undefined {
    return this.get(path)?.racy;
  }

  /**
   * Records a content hash computed for `key`; `hashStartedMs` is Date.now() taken before the
   * read. Pass the entry's mode/uid/gid in `key` and its entry digest to cache that as well.
   */
  record(path: string, key: StatKey & Partial<EntryStatKey>, sha256: string, hashStartedMs: number, entryDigest?: string): void {
    const racy = Math.max(key.mtimeMs, key.ctimeMs) >= hashStartedMs - this.racyWindowMs;
    const hasMeta = key.mode !== undefined && key.uid !== undefined && key.gid !== undefined;
    const row: Row = {
      size: key.size,
      mtimeMs: key.mtimeMs,
      ctimeMs: key.ctimeMs,
      ino: key.ino,
      dev: key.dev,
      mode: hasMeta ? (key.mode as number) : -1,
      uid: hasMeta ? (key.uid as number) : -1,
      gid: hasMeta ? (key.gid as number) : -1,
      sha256,
      entryDigest: hasMeta && entryDigest !== undefined ? entryDigest : "",
      racy,
    };
    this.put(path, row, this.loaded.find(path));
  }

  /**
   * record() for the file at `o` in a raw walk's numbers (raw-fields.ts order), with its mode and owner.
   * `row` is its row as align() found it (-1: none), which spares a lookup by path.
   */
  recordAt(path: string, nums: Float64Array, o: number, sha256: string, hashStartedMs: number, entryDigest?: string, row?: number): void {
    if (row === undefined) {
      this.record(path, rawKey(nums, o), sha256, hashStartedMs, entryDigest);
      return;
    }
    const key = rawKey(nums, o);
    const racy = Math.max(key.mtimeMs, key.ctimeMs) >= hashStartedMs - this.racyWindowMs;
    const entry = entryDigest ?? "";
    this.put(path, { ...key, sha256, entryDigest: entry, racy }, row >= 0 && this.loaded.isLive(row) ? row : undefined);
  }

  /** Stores `row` for `path`, replacing loaded row `loadedRow` (its current row, if any). */
  private put(path: string, row: Row, loadedRow: number | undefined): void {
    const old = this.changed.get(path) ?? (loadedRow === undefined ? undefined : this.loaded.row(loadedRow));
    if (old && sameRow(old, row)) return; // nothing new: the file need not be rewritten
    if (loadedRow !== undefined) this.loaded.drop(loadedRow);
    this.changed.set(path, row);
    this.dirty = true;
  }

  /** Drops entries whose path `keep` rejects (e.g. files no longer in the context). */
  prune(keep: (path: string) => boolean): void {
    const loaded = this.loaded;
    for (let i = 0; i < loaded.count; i++) {
      // (In an unsorted file only the last row of a path counts.)
      if (!loaded.isLive(i) || (!loaded.sorted && loaded.find(loaded.paths[i] as string) !== i)) continue;
      if (!keep(loaded.paths[i] as string)) {
        loaded.drop(i);
        this.dirty = true;
        this.reshaped = true;
      }
    }
    for (const path of this.changed.keys()) {
      if (!keep(path)) {
        this.changed.delete(path);
        this.dirty = true;
        this.reshaped = true;
      }
    }
  }

  /**
   * Matches the cache to a walk (its comparePaths-sorted `paths` and raw-fields.ts numbers): the row of
   * each walked file, or -1, for entryDigestAt and fillEntryDigests. Rows that are not files of the walk
   * are pruned, as prune() would: call this before recording anything.
   */
  align(paths: readonly string[], nums: Float64Array, walkDigest: Buffer): Int32Array {
    const { rows, identical } = this.loaded.align(paths, nums, walkDigest);
    // Saved again (with this walk's indices) unless it already was for this very path list.
    if (!identical) {
      this.dirty = true;
      this.reshaped = true;
    }
    this.walk = { paths, nums, digest: walkDigest, rows };
    return rows;
  }

  /**
   * For each walked file k in [from, to) whose out[k] is unset: out[k] = its cached entry digest when
   * entryDigestAt would give one from its aligned row (the hot loop of a rebuild, kept free of calls).
   */
  fillEntryDigests(rows: Int32Array, nums: Float64Array, from: number, to: number, out: (string | undefined)[]): void {
    this.loaded.fillEntryDigests(rows, nums, from, to, out);
  }

  /**
   * lookupEntry's entry digest for the file at `o` in a raw walk's numbers (raw-fields.ts order), whose
   * row align() found: undefined unless its key and mode/owner are unchanged, it is not racy, and one was
   * recorded. `path` is only used for a row recorded since (rare).
   */
  entryDigestAt(row: number, path: string, nums: Float64Array, o: number): string | undefined {
    if (row >= 0 && this.loaded.isLive(row)) return this.loaded.trustedRaw(row, nums, o) ? this.loaded.entryDigestRaw(row, nums, o) : undefined;
    return this.changed.size === 0 ? undefined : this.lookupEntry(path, rawKey(nums, o))?.entryDigest;
  }

  /** The content sha256 for the file at `o` if its key is unchanged and it is not racy (see entryDigestAt). */
  sha256At(row: number, path: string, nums: Float64Array, o: number): string | undefined {
    if (row >= 0 && this.loaded.isLive(row)) return this.loaded.trustedRaw(row, nums, o) ? this.loaded.sha256(row) : undefined;
    return this.changed.size === 0 ? undefined : this.lookupEntry(path, rawKey(nums, o))?.sha256;
  }

  /** Whether save() would write anything. */
  get isDirty(): boolean {
    return this.dirty;
  }

  /**
   * Writes the cache atomically (temp file + rename) if anything changed. With `deferSmall`, a change of a
   * few small files only is left unwritten: rewriting every row (~20 ms for 20k files) costs more than
   * hashing those files again next time, which is all a stale row costs (the next real save records them).
   */
  async save(options: { deferSmall?: boolean } = {}): Promise<void> {
    if (!this.file || !this.dirty) return;
    if (options.deferSmall && !this.reshaped && this.changed.size <= DEFER_MAX_ROWS) {
      let bytes = 0;
      for (const row of this.changed.values()) bytes += row.size;
      if (bytes <= DEFER_MAX_BYTES) return;
    }
    const body = this.encode();
    const data = Buffer.concat([body, createHash("sha256").update(body).digest()]);
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, this.file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    this.dirty = false;
    this.reshaped = false;
  }

  /**
   * Every row in comparePaths order: live loaded rows copied in runs, recorded ones merged in. After
   * align(), rows also get their index in that walk, and rows whose path is no longer a file are left out.
   */
  private encode(): Buffer {
    const loaded = this.loaded;
    const walk = this.walk;
    let toWalk: Int32Array | undefined;
    if (walk) {
      toWalk = new Int32Array(loaded.count).fill(-1);
      for (let k = 0; k < walk.rows.length; k++) if ((walk.rows[k] as number) >= 0) toWalk[walk.rows[k] as number] = k;
    }
    const isFile = (k: number): boolean => walk !== undefined && (((walk.nums[k * RAW_FIELDS + R_MODE] as number) & S_IFMT) === S_IFREG);
    const order = loaded.liveOrder();
    const changed = [...this.changed.keys()].sort(comparePaths);
    const paths: string[] = [];
    // Output row j comes from loaded row src[j], or from changed[-src[j] - 1] when negative.
    const src: number[] = [];
    const widx: number[] = [];
    let a = 0;
    let b = 0;
    while (a < order.length || b < changed.length) {
      const lp = a < order.length ? (loaded.paths[order[a] as number] as string) : undefined;
      const cp = b < changed.length ? (changed[b] as string) : undefined;
      let from: number;
      let path: string;
      let k: number;
      if (cp === undefined || (lp !== undefined && comparePaths(lp, cp) < 0)) {
        from = order[a++] as number;
        path = lp as string;
        k = toWalk ? (toWalk[from] as number) : -1;
      } else {
        from = -(b++) - 1;
        path = cp;
        k = walk ? (sortedIndexOf(walk.paths, cp) ?? -1) : -1;
      }
      if (walk && k >= 0 && !isFile(k)) continue; // became a directory, symlink, ...
      src.push(from);
      widx.push(k);
      paths.push(path);
    }
    const out = new Encoder(paths);
    for (let j = 0; j < src.length; ) {
      const s = src[j] as number;
      if (s < 0) {
        out.setRow(j++, this.changed.get(changed[-s - 1] as string) as Row);
        continue;
      }
      let n = 1;
      while (j + n < src.length && src[j + n] === s + n) n++;
      loaded.copyTo(s, n, out, j);
      j += n;
    }
    if (walk && !widx.includes(-1)) {
      out.walkIndex.set(widx);
      out.setWalk(walk.digest);
    }
    return out.buf;
  }

  private get(path: string): Row | undefined {
    const row = this.changed.get(path);
    if (row) return row;
    const i = this.loaded.find(path);
    return i === undefined ? undefined : this.loaded.row(i);
  }

  private trusted(path: string, key: StatKey): Row | undefined {
    const i = this.loaded.find(path);
    if (i !== undefined) return this.loaded.trusted(i, key) ? this.loaded.row(i) : undefined;
    const row = this.changed.get(path);
    if (!row || row.racy) return undefined;
    if (row.size !== key.size || row.mtimeMs !== key.mtimeMs || row.ctimeMs !== key.ctimeMs || row.ino !== key.ino || row.dev !== key.dev)
      return undefined;
    return row;
  }
}

function rawKey(nums: Float64Array, o: number): EntryStatKey {
  return {
    size: nums[o + R_SIZE] as number,
    mtimeMs: nums[o + R_MTIME] as number,
    ctimeMs: nums[o + R_CTIME] as number,
    ino: nums[o + R_INO] as number,
    dev: nums[o + R_DEV] as number,
    mode: (nums[o + R_MODE] as number) & 0o7777,
    uid: nums[o + R_UID] as number,
    gid: nums[o + R_GID] as number,
  };
}

function sameRow(a: Row, b: Row): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.sha256 === b.sha256 &&
    a.entryDigest === b.entryDigest &&
    a.racy === b.racy
  );
}

const HEX_RE = /^[0-9a-f]{64}$/;

interface Layout {
  /** Offset of the walk digest (v4; -1 in a v2 layout). */
  walkAt: number;
  numsAt: number;
  /** Offset of the walk index column (v4; -1 in a v2 layout). */
  widxAt: number;
  shasAt: number;
  digestsAt: number;
  racyAt: number;
  pathsAt: number;
}

function layoutFor(count: number, v4: boolean): Layout {
  const walkAt = v4 ? HEADER.length + 8 : -1;
  const numsAt = align8(HEADER.length + 8 + (v4 ? WALK_DIGEST : 0));
  const widxAt = v4 ? numsAt + count * NUMS * 8 : -1;
  const shasAt = numsAt + count * NUMS * 8 + (v4 ? count * 4 : 0);
  const digestsAt = shasAt + count * HEX;
  const racyAt = digestsAt + count * HEX;
  const pathsAt = racyAt + count;
  return { walkAt, numsAt, widxAt, shasAt, digestsAt, racyAt, pathsAt };
}

/** A cache file being written: header and paths up front, rows filled in by index. */
class Encoder {
  readonly buf: Buffer;
  readonly nums: Float64Array;
  /** Each row's index in the walk named by the walk digest (setWalk). */
  readonly walkIndex: Int32Array;
  readonly layout: Layout;

  constructor(paths: readonly string[]) {
    const pathBytes = Buffer.from(paths.join("\0"), "utf8");
    this.layout = layoutFor(paths.length, true);
    // An unpooled buffer starts at offset 0 of its own ArrayBuffer, so the float column is
    // 8-aligned. Every byte is written: header and padding here, each row by setRow/copyTo.
    this.buf = Buffer.allocUnsafeSlow(this.layout.pathsAt + pathBytes.length);
    HEADER.copy(this.buf, 0);
    this.buf.fill(0, HEADER.length, this.layout.numsAt);
    this.buf.writeUInt32LE(paths.length, HEADER.length);
    this.buf.writeUInt32LE(pathBytes.length, HEADER.length + 4);
    this.nums = new Float64Array(this.buf.buffer, this.buf.byteOffset + this.layout.numsAt, paths.length * NUMS);
    this.walkIndex = new Int32Array(this.buf.buffer, this.buf.byteOffset + this.layout.widxAt, paths.length).fill(-1);
    pathBytes.copy(this.buf, this.layout.pathsAt);
  }

  /** Names the walk that walkIndex refers to (by default none: the zero digest). */
  setWalk(digest: Buffer): void {
    digest.copy(this.buf, this.layout.walkAt, 0, WALK_DIGEST);
  }

  setRow(j: number, r: Row): void {
    const n = this.nums;
    const o = j * NUMS;
    n[o] = r.size;
    n[o + 1] = r.mtimeMs;
    n[o + 2] = r.ctimeMs;
    n[o + 3] = r.ino;
    n[o + 4] = r.dev;
    n[o + 5] = r.mode === -1 ? -1 : S_IFREG | r.mode; // a regular file's st_mode, comparable with a walk's
    n[o + 6] = r.uid;
    n[o + 7] = r.gid;
    // Hashes that are not plain sha256 hex (only ever in unit tests) are padded so rows stay fixed-size.
    this.buf.write(r.sha256.padEnd(HEX, "-").slice(0, HEX), this.layout.shasAt + j * HEX, "latin1");
    const d = r.entryDigest.startsWith("sha256:") ? r.entryDigest.slice(7) : "";
    this.buf.write(HEX_RE.test(d) ? d : NO_DIGEST, this.layout.digestsAt + j * HEX, "latin1");
    this.buf[this.layout.racyAt + j] = r.racy ? 1 : 0;
  }
}

/** Undefined for anything that is not a well-formed v2/v4 cache (then the cache starts empty). */
function decode(file: Buffer): LoadedRows | undefined {
  if (file.length < HEADER.length + 8) return undefined;
  const head = file.subarray(0, HEADER.length);
  const v4 = head.equals(HEADER);
  let buf = file;
  if (v4) {
    if (file.length < HEADER.length + 8 + CHECKSUM) return undefined;
    buf = file.subarray(0, file.length - CHECKSUM);
    if (!createHash("sha256").update(buf).digest().equals(file.subarray(file.length - CHECKSUM))) return undefined;
  }
  if (!v4 && !head.equals(HEADER_V2)) return undefined;
  const count = buf.readUInt32LE(HEADER.length);
  const pathLen = buf.readUInt32LE(HEADER.length + 4);
  const layout = layoutFor(count, v4);
  const { walkAt, numsAt, widxAt, shasAt, digestsAt, racyAt, pathsAt } = layout;
  if (buf.length !== pathsAt + pathLen) return undefined;
  // Typed arrays need aligned offsets; a Buffer from readFileSync may not start at one (then copy).
  const nums = (buf.byteOffset + numsAt) % 8 === 0 ? new Float64Array(buf.buffer, buf.byteOffset + numsAt, count * NUMS) : new Float64Array(copyOut(buf, numsAt, count * NUMS * 8));
  const pathsText = buf.toString("utf8", pathsAt, pathsAt + pathLen);
  let sorted = v4;
  let walk: { digest: Buffer; index: Int32Array } | undefined;
  if (v4) {
    const index = (buf.byteOffset + widxAt) % 4 === 0 ? new Int32Array(buf.buffer, buf.byteOffset + widxAt, count) : new Int32Array(copyOut(buf, widxAt, count * 4));
    const digest = buf.subarray(walkAt, walkAt + WALK_DIGEST);
    if (!digest.equals(NO_WALK)) walk = { digest, index };
  } else {
    // Version 2 kept permission bits where version 4 keeps the st_mode of a regular file.
    for (let o = 5; o < count * NUMS; o += NUMS) if ((nums[o] as number) !== -1) nums[o] = S_IFREG | (nums[o] as number);
    const paths = count === 0 ? [] : pathsText.split("\0");
    if (paths.length !== count) return undefined;
    sorted = true;
    for (let i = 1; i < count && sorted; i++) sorted = comparePaths(paths[i - 1] as string, paths[i] as string) < 0;
  }
  const racy = new Uint8Array(buf.buffer, buf.byteOffset + racyAt, count);
  return new LoadedRows(count, pathsText, sorted, walk, nums, buf.toString("latin1", shasAt, digestsAt), buf.toString("latin1", digestsAt, racyAt), racy, buf, layout);
}

/** `length` bytes of `buf` from `at`, in a fresh (aligned) ArrayBuffer. */
function copyOut(buf: Buffer, at: number, length: number): ArrayBuffer {
  const out = new Uint8Array(length);
  out.set(buf.subarray(at, at + length));
  return out.buffer;
}

/** Undoes encode()'s padding of short (test-only) hashes. */
function unpad(hex: string): string {
  return hex.charCodeAt(HEX - 1) === 45 ? hex.replace(/-+$/, "") : hex;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
