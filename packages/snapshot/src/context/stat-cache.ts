// Persisted index from (path, size, mtime, ctime, inode, device) to a file's content sha256,
// so an unchanged context is re-digested from lstat alone (like git's index).
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** The lstat fields that must be unchanged for a cached content hash to be trusted. */
export interface StatKey {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
}

/**
 * Files whose mtime/ctime is this close to (or after) the moment hashing started are
 * "racy": a later write in the same timestamp tick would leave the key unchanged, so they
 * are stored but always re-hashed (git's racy-clean rule; 1 s covers coarse filesystems).
 */
export const DEFAULT_RACY_WINDOW_MS = 1000;

type Row = [size: number, mtimeMs: number, ctimeMs: number, ino: number, dev: number, sha256: string, racy: 0 | 1];

interface CacheFileV1 {
  version: 1;
  entries: Record<string, Row>;
}

export interface StatCacheOptions {
  racyWindowMs?: number;
}

export class StatCache {
  private readonly rows: Map<string, Row>;
  private dirty = false;
  private readonly racyWindowMs: number;

  private constructor(
    /** Where the cache is persisted; undefined for an in-memory cache. */
    readonly file: string | undefined,
    rows: Map<string, Row>,
    opts: StatCacheOptions,
  ) {
    this.rows = rows;
    this.racyWindowMs = opts.racyWindowMs ?? DEFAULT_RACY_WINDOW_MS;
  }

  static inMemory(opts: StatCacheOptions = {}): StatCache {
    return new StatCache(undefined, new Map(), opts);
  }

  /** Loads `file`; a missing or unreadable/corrupt cache starts empty (it is only an accelerator). */
  static async load(file: string, opts: StatCacheOptions = {}): Promise<StatCache> {
    const rows = new Map<string, Row>();
    try {
      const parsed = JSON.parse(await readFile(file, "utf8")) as Partial<CacheFileV1>;
      if (parsed.version === 1 && parsed.entries && typeof parsed.entries === "object") {
        for (const [path, row] of Object.entries(parsed.entries)) {
          if (Array.isArray(row) && row.length === 7 && typeof row[5] === "string") rows.set(path, row);
        }
      }
    } catch {
      // start empty
    }
    return new StatCache(file, rows, opts);
  }

  get size(): number {
    return this.rows.size;
  }

  /** The cached content sha256 (hex) if `key` is unchanged and the entry is not racy. */
  lookup(path: string, key: StatKey): string | undefined {
    const row = this.rows.get(path);
    if (!row || row[6] === 1) return undefined;
    if (row[0] !== key.size || row[1] !== key.mtimeMs || row[2] !== key.ctimeMs || row[3] !== key.ino || row[4] !== key.dev)
      return undefined;
    return row[5];
  }

  /** Records a content hash computed for `key`; `hashStartedMs` is Date.now() taken before the read. */
  record(path: string, key: StatKey, sha256: string, hashStartedMs: number): void {
    const racy = Math.max(key.mtimeMs, key.ctimeMs) >= hashStartedMs - this.racyWindowMs ? 1 : 0;
    this.rows.set(path, [key.size, key.mtimeMs, key.ctimeMs, key.ino, key.dev, sha256, racy]);
    this.dirty = true;
  }

  /** Drops entries whose path `keep` rejects (e.g. files no longer in the context). */
  prune(keep: (path: string) => boolean): void {
    for (const path of this.rows.keys()) {
      if (!keep(path)) {
        this.rows.delete(path);
        this.dirty = true;
      }
    }
  }

  /** Writes the cache atomically (temp file + rename) if anything changed. */
  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    const data: CacheFileV1 = { version: 1, entries: Object.fromEntries(this.rows) };
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await writeFile(tmp, JSON.stringify(data));
      await rename(tmp, this.file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    this.dirty = false;
  }
}
