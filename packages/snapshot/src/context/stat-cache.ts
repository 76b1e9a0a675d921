// Persisted index from (path, size, mtime, ctime, inode, device) to a file's content sha256
// and entry digest, so an unchanged context is re-digested from lstat alone (like git's index).
//
// On-disk format (v2), built so a 13k-file cache loads in a few ms with few allocations:
//   header line | u32 row count | u32 paths byte length | pad to 8 |
//   float64[count * NUMS] (size, mtimeMs, ctimeMs, ino, dev, mode, uid, gid) |
//   count * 64 ASCII hex (content sha256) | count * 64 ASCII hex (entry digest or 64 "-") |
//   count racy flags | NUL-joined UTF-8 paths.
// The numbers are read in place through a Float64Array and the hex columns are sliced out of
// one string per column, so only the path strings and one Map are built at load time.
import { readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ENTRY_DIGEST_FORMAT } from "./hash.js";

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

/** Bump when the layout changes; the entry digest format is part of the header too. */
const HEADER = Buffer.from(`kiln-statcache 2 ${ENTRY_DIGEST_FORMAT}\n`, "latin1");
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

/** The rows of a loaded cache file, read in place. */
class LoadedRows {
  constructor(
    readonly index: Map<string, number>,
    private readonly nums: Float64Array,
    private readonly shas: string,
    private readonly digests: string,
    private readonly racy: Uint8Array,
    /** The file's bytes and column offsets, so save() can copy unchanged rows verbatim. */
    private readonly buf: Buffer,
    private readonly layout: Layout,
  ) {}

  static empty(): LoadedRows {
    return new LoadedRows(new Map(), new Float64Array(0), "", "", new Uint8Array(0), Buffer.alloc(0), layoutFor(0));
  }

  /** Copies row i into row j of `out` without decoding it. */
  copyTo(i: number, out: Encoder, j: number): void {
    for (let k = 0; k < NUMS; k++) out.nums[j * NUMS + k] = this.nums[i * NUMS + k] as number;
    this.buf.copy(out.buf, out.layout.shasAt + j * HEX, this.layout.shasAt + i * HEX, this.layout.shasAt + i * HEX + HEX);
    this.buf.copy(out.buf, out.layout.digestsAt + j * HEX, this.layout.digestsAt + i * HEX, this.layout.digestsAt + i * HEX + HEX);
    out.buf[out.layout.racyAt + j] = this.racy[i] as number;
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
      mode: n[o + 5] as number,
      uid: n[o + 6] as number,
      gid: n[o + 7] as number,
      sha256: unpad(this.shas.slice(i * HEX, i * HEX + HEX)),
      entryDigest: digest === NO_DIGEST ? "" : `sha256:${digest}`,
      racy: this.racy[i] === 1,
    };
  }

  /** Whether row i's lstat key equals `key` and it is not racy. */
  trusted(i: number, key: StatKey): boolean {
    const n = this.nums;
    const o = i * NUMS;
    return this.racy[i] !== 1 && n[o] === key.size && n[o + 1] === key.mtimeMs && n[o + 2] === key.ctimeMs && n[o + 3] === key.ino && n[o + 4] === key.dev;
  }

  /** lookupEntry's answer for a trusted row, built without materializing the row (the hot path). */
  entry(i: number, key: EntryStatKey): { sha256: string; entryDigest: string | undefined } {
    const n = this.nums;
    const o = i * NUMS;
    const sha256 = unpad(this.shas.slice(i * HEX, i * HEX + HEX));
    if (n[o + 5] !== key.mode || n[o + 6] !== key.uid || n[o + 7] !== key.gid) return { sha256, entryDigest: undefined };
    const digest = this.digests.slice(i * HEX, i * HEX + HEX);
    return { sha256, entryDigest: digest === NO_DIGEST ? undefined : `sha256:${digest}` };
  }
}

export interface StatCacheOptions {
  racyWindowMs?: number;
}

export class StatCache {
  /** Rows from the file; a path moves to `changed` when it is recorded again. */
  private readonly loaded: LoadedRows;
  private readonly changed = new Map<string, Row>();
  private dirty = false;
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
    return this.loaded.index.size + this.changed.size;
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
    const i = this.loaded.index.get(path);
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
    const old = this.get(path);
    if (old && sameRow(old, row)) return; // nothing new: the file need not be rewritten
    this.loaded.index.delete(path);
    this.changed.set(path, row);
    this.dirty = true;
  }

  /** Drops entries whose path `keep` rejects (e.g. files no longer in the context). */
  prune(keep: (path: string) => boolean): void {
    for (const rows of [this.loaded.index, this.changed]) {
      for (const path of rows.keys()) {
        if (!keep(path)) {
          rows.delete(path);
          this.dirty = true;
        }
      }
    }
  }

  /** Whether save() would write anything. */
  get isDirty(): boolean {
    return this.dirty;
  }

  /** Writes the cache atomically (temp file + rename) if anything changed. */
  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    const paths = [...this.loaded.index.keys(), ...this.changed.keys()];
    const out = new Encoder(paths);
    let j = 0;
    for (const i of this.loaded.index.values()) this.loaded.copyTo(i, out, j++);
    for (const row of this.changed.values()) out.setRow(j++, row);
    const data = out.buf;
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
  }

  private get(path: string): Row | undefined {
    const row = this.changed.get(path);
    if (row) return row;
    const i = this.loaded.index.get(path);
    return i === undefined ? undefined : this.loaded.row(i);
  }

  private trusted(path: string, key: StatKey): Row | undefined {
    const i = this.loaded.index.get(path);
    if (i !== undefined) return this.loaded.trusted(i, key) ? this.loaded.row(i) : undefined;
    const row = this.changed.get(path);
    if (!row || row.racy) return undefined;
    if (row.size !== key.size || row.mtimeMs !== key.mtimeMs || row.ctimeMs !== key.ctimeMs || row.ino !== key.ino || row.dev !== key.dev)
      return undefined;
    return row;
  }
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
  numsAt: number;
  shasAt: number;
  digestsAt: number;
  racyAt: number;
  pathsAt: number;
}

function layoutFor(count: number): Layout {
  const numsAt = align8(HEADER.length + 8);
  const shasAt = numsAt + count * NUMS * 8;
  const digestsAt = shasAt + count * HEX;
  const racyAt = digestsAt + count * HEX;
  const pathsAt = racyAt + count;
  return { numsAt, shasAt, digestsAt, racyAt, pathsAt };
}

/** A cache file being written: header and paths up front, rows filled in by index. */
class Encoder {
  readonly buf: Buffer;
  readonly nums: Float64Array;
  readonly layout: Layout;

  constructor(paths: readonly string[]) {
    const pathBytes = Buffer.from(paths.join("\0"), "utf8");
    this.layout = layoutFor(paths.length);
    // An unpooled buffer starts at offset 0 of its own ArrayBuffer, so the float column is
    // 8-aligned. Every byte is written: header and padding here, each row by setRow/copyTo.
    this.buf = Buffer.allocUnsafeSlow(this.layout.pathsAt + pathBytes.length);
    HEADER.copy(this.buf, 0);
    this.buf.fill(0, HEADER.length, this.layout.numsAt);
    this.buf.writeUInt32LE(paths.length, HEADER.length);
    this.buf.writeUInt32LE(pathBytes.length, HEADER.length + 4);
    this.nums = new Float64Array(this.buf.buffer, this.buf.byteOffset + this.layout.numsAt, paths.length * NUMS);
    pathBytes.copy(this.buf, this.layout.pathsAt);
  }

  setRow(j: number, r: Row): void {
    const n = this.nums;
    const o = j * NUMS;
    n[o] = r.size;
    n[o + 1] = r.mtimeMs;
    n[o + 2] = r.ctimeMs;
    n[o + 3] = r.ino;
    n[o + 4] = r.dev;
    n[o + 5] = r.mode;
    n[o + 6] = r.uid;
    n[o + 7] = r.gid;
    // Hashes that are not plain sha256 hex (only ever in unit tests) are padded so rows stay fixed-size.
    this.buf.write(r.sha256.padEnd(HEX, "-").slice(0, HEX), this.layout.shasAt + j * HEX, "latin1");
    const d = r.entryDigest.startsWith("sha256:") ? r.entryDigest.slice(7) : "";
    this.buf.write(HEX_RE.test(d) ? d : NO_DIGEST, this.layout.digestsAt + j * HEX, "latin1");
    this.buf[this.layout.racyAt + j] = r.racy ? 1 : 0;
  }
}

/** Undefined for anything that is not a well-formed v2 cache (then the cache starts empty). */
function decode(buf: Buffer): LoadedRows | undefined {
  if (buf.length < HEADER.length + 8 || !buf.subarray(0, HEADER.length).equals(HEADER)) return undefined;
  const count = buf.readUInt32LE(HEADER.length);
  const pathLen = buf.readUInt32LE(HEADER.length + 4);
  const layout = layoutFor(count);
  const { numsAt, shasAt, digestsAt, racyAt, pathsAt } = layout;
  if (buf.length !== pathsAt + pathLen) return undefined;
  // Float64Array needs an 8-aligned offset; a Buffer from readFileSync may not start at one.
  let nums: Float64Array;
  if ((buf.byteOffset + numsAt) % 8 === 0) nums = new Float64Array(buf.buffer, buf.byteOffset + numsAt, count * NUMS);
  else {
    nums = new Float64Array(count * NUMS);
    new Uint8Array(nums.buffer).set(buf.subarray(numsAt, shasAt));
  }
  const paths = count === 0 ? [] : buf.toString("utf8", pathsAt, pathsAt + pathLen).split("\0");
  if (paths.length !== count) return undefined;
  const index = new Map<string, number>();
  for (let i = 0; i < count; i++) index.set(paths[i] as string, i);
  const racy = new Uint8Array(buf.buffer, buf.byteOffset + racyAt, count);
  return new LoadedRows(index, nums, buf.toString("latin1", shasAt, digestsAt), buf.toString("latin1", digestsAt, racyAt), racy, buf, layout);
}

/** Undoes encode()'s padding of short (test-only) hashes. */
function unpad(hex: string): string {
  return hex.charCodeAt(HEX - 1) === 45 ? hex.replace(/-+$/, "") : hex;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
