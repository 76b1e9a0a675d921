import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, open, opendir, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BlobBatch } from "./blob-batch.js";
import { BlobIngest, type BlobWriteResult, type IngestOptions } from "./blob-ingest.js";
import { CompositeBlobError, compositeReadStream, parseComposite, serializeComposite, type CompositeBlob, type CompositePart } from "./composite.js";
import { computeDigest, digestHex, isDigest, type Digest } from "./digest.js";
import { BlobNotFoundError, DigestMismatchError, InvalidStoreNameError, SizeMismatchError } from "./errors.js";
import { fsyncDir, isErrno, tempName, tempNamePid, unlinkIfExists } from "./fs-util.js";
import { isProcessAlive } from "./process.js";
import { defaultStoreRoot } from "./store-root.js";

export interface BlobInfo {
  digest: Digest;
  size: number;
  mtimeMs: number;
}

export interface CleanupIngestOptions {
  /** Temp files older than this are removed whoever owns them. Default 24 hours. */
  maxAgeMs?: number;
  /** Also remove younger temp files whose writer pid is no longer running on this machine. Default false. */
  removeDeadOwners?: boolean;
}

const DEFAULT_INGEST_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Directories every store has; other packages add their own (e.g. layers/) via dir()/ensureDir(). */
const STORE_DIRS = ["blobs/sha256", "composites/sha256", "ingest", "index", "tags", "tmp", "history", "locks"] as const;

/**
 * Content-addressed blob store in the style of containerd's content store: blobs live at
 * blobs/sha256/<hex>, are written through ingest/ temp files, verified, fsynced and renamed into place.
 * Several processes may share one root; writers of the same blob all succeed. A blob may also be a composite
 * (composites/sha256/<hex>.json: the concatenation of regular part blobs, see composite.ts); every reader
 * (has, stat, createReadStream, readBytes, verify) sees it like a regular blob, but it has no single file.
 */
export class BlobStore {
  readonly root: string;
  readonly #blobsDir: string;
  readonly #compositesDir: string;
  readonly #ingestDir: string;

  private constructor(root: string) {
    this.root = root;
    this.#blobsDir = join(root, "blobs", "sha256");
    this.#compositesDir = join(root, "composites", "sha256");
    this.#ingestDir = join(root, "ingest");
  }

  /** Opens (creating directories as needed) the store at `root`, or at defaultStoreRoot(). */
  static async open(root: string = defaultStoreRoot()): Promise<BlobStore> {
    const store = new BlobStore(resolve(root));
    // Synchronous: a dozen directories that already exist on every build but the first (each a thread-pool
    // round trip through the promise API, on the way to the context walk).
    for (const d of STORE_DIRS) mkdirSync(join(root, d), { recursive: true });
    return store;
  }

  /** Path of a top-level store directory (not created; see ensureDir). `name` must be one path segment. */
  dir(name: string): string {
    if (name === "" || name === "." || name === ".." || /[/\\\0]/.test(name)) throw new InvalidStoreNameError(name);
    return join(this.root, name);
  }

  async ensureDir(name: string): Promise<string> {
    const dir = this.dir(name);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Where a regular blob lives (whether or not it exists); for fast local reads. A composite blob has no
   * single file: use filePath() (undefined for composites) or createReadStream().
   */
  path(digest: Digest): string {
    return join(this.#blobsDir, digestHex(digest));
  }

  /** The file holding the blob's bytes when it is a regular blob present on disk, else undefined. */
  filePath(digest: Digest): string | undefined {
    const p = this.path(digest);
    return existsSync(p) ? p : undefined;
  }

  #compositePath(digest: Digest): string {
    return join(this.#compositesDir, `${digestHex(digest)}.json`);
  }

  /** The composite record, or undefined when the blob is regular or absent. */
  async readComposite(digest: Digest): Promise<CompositeBlob | undefined> {
    try {
      return parseComposite(readFileSync(this.#compositePath(digest), "utf8"), digest);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  #readCompositeSync(digest: Digest): CompositeBlob | undefined {
    try {
      return parseComposite(readFileSync(this.#compositePath(digest), "utf8"), digest);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  /**
   * Records `digest` (size = sum of part sizes) as the in-order concatenation of the existing regular blobs
   * `parts`. The caller hashed the bytes while producing them; `verify` re-hashes the parts first
   * (DigestMismatchError). Atomic (temp file, fsync, rename, fsync dir) and idempotent: an existing regular or
   * composite blob with that digest makes it a no-op. Throws BlobNotFoundError when a part is missing and
   * CompositeBlobError when a part is itself a composite. Under a Lease, add reused (older) parts to the lease
   * before calling this, as for any existing blob a build relies on: GC may otherwise take them meanwhile.
   */
  async writeComposite(digest: Digest, parts: CompositePart[], options: { verify?: boolean; signal?: AbortSignal } = {}): Promise<BlobWriteResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    digestHex(digest);
    let size = 0;
    for (const p of parts) {
      digestHex(p.digest);
      if (!Number.isSafeInteger(p.size) || p.size < 0) throw new CompositeBlobError(`part ${p.digest} has an invalid size ${String(p.size)}`);
      size += p.size;
    }
    if (await this.has(digest)) return { digest, size };
    // One synchronous stat per part: a 200 MB layer has ~200 parts, and a thread-pool round trip each was
    // measurable on every COPY that missed the cache.
    for (const p of parts) {
      const st = statSync(this.path(p.digest), { throwIfNoEntry: false });
      if (!st) {
        if (await this.readComposite(p.digest)) throw new CompositeBlobError(`part ${p.digest} of ${digest} is a composite; composites may not nest`);
        throw new BlobNotFoundError(p.digest);
      }
      if (st.size !== p.size) throw new SizeMismatchError(p.size, st.size);
    }
    const record: CompositeBlob = { digest, size, parts: parts.map((p) => ({ digest: p.digest, size: p.size })) };
    if (options.verify) {
      const hash = createHash("sha256");
      await pipeline(compositeReadStream(record, (d) => this.path(d)), hash, signal ? { signal } : {});
      const actual: Digest = `sha256:${hash.digest("hex")}`;
      if (actual !== digest) throw new DigestMismatchError(digest, actual);
    }
    signal?.throwIfAborted();
    const tmp = join(this.#ingestDir, tempName("composite"));
    try {
      const fh = await open(tmp, "wx", 0o444);
      try {
        await fh.writeFile(serializeComposite(record));
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Concurrent writers of one digest each rename an identical record into place.
      await rename(tmp, this.#compositePath(digest));
    } catch (err) {
      await unlinkIfExists(tmp);
      throw err;
    }
    await fsyncDir(this.#compositesDir);
    return { digest, size };
  }

  /** Every composite record, with its file's mtime. Unreadable records are skipped (checkStore reports them). */
  async *listComposites(): AsyncIterable<CompositeBlob & { mtimeMs: number }> {
    for await (const r of this.listCompositeRecords()) if (r.composite) yield { ...r.composite, mtimeMs: r.mtimeMs };
  }

  /** Every composite record file: parsed, or with the CompositeBlobError that makes it unreadable. */
  async *listCompositeRecords(): AsyncIterable<{ digest: Digest; mtimeMs: number; composite?: CompositeBlob; error?: CompositeBlobError }> {
    for await (const entry of await opendir(this.#compositesDir)) {
      if (!entry.name.endsWith(".json")) continue;
      const digest = `sha256:${entry.name.slice(0, -".json".length)}`;
      if (!isDigest(digest)) continue;
      const file = join(this.#compositesDir, entry.name);
      let text: string;
      let mtimeMs: number;
      try {
        [text, mtimeMs] = await Promise.all([readFile(file, "utf8"), stat(file).then((st) => st.mtimeMs)]);
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue;
        throw err;
      }
      let composite: CompositeBlob;
      try {
        composite = parseComposite(text, digest);
      } catch (err) {
        if (!(err instanceof CompositeBlobError)) throw err;
        yield { digest, mtimeMs, error: err };
        continue;
      }
      yield { digest, mtimeMs, composite };
    }
  }

  async #statRegular(digest: Digest): Promise<{ size: number } | undefined> {
    try {
      const st = await stat(this.path(digest));
      return { size: st.size };
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: Digest): Promise<{ size: number } | undefined> {
    const regular = await this.#statRegular(digest);
    if (regular) return regular;
    const c = await this.readComposite(digest);
    return c ? { size: c.size } : undefined;
  }

  /**
   * Streams a blob (byte range `start`..`end` inclusive, like fs.createReadStream). The file is opened
   * synchronously so a missing blob throws BlobNotFoundError here, and a concurrent delete cannot cut the read.
   */
  createReadStream(digest: Digest, options: { start?: number; end?: number; highWaterMark?: number } = {}): Readable {
    let fd: number;
    try {
      fd = openSync(this.path(digest), "r");
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
      const c = this.#readCompositeSync(digest);
      if (!c) throw new BlobNotFoundError(digest, { cause: err });
      return compositeReadStream(c, (d) => this.path(d), options);
    }
    return createReadStream("", { ...options, fd, autoClose: true });
  }

  /** Whole blob in memory: only for small blobs such as configs and manifests. */
  async readBytes(digest: Digest): Promise<Buffer> {
    try {
      return readFileSync(this.path(digest));
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
      if (!(await this.readComposite(digest))) throw new BlobNotFoundError(digest, { cause: err });
    }
    const chunks: Buffer[] = [];
    for await (const c of this.createReadStream(digest)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async readJson<T>(digest: Digest): Promise<T> {
    return JSON.parse((await this.readBytes(digest)).toString("utf8")) as T;
  }

  async writeBytes(data: Uint8Array | string, expected?: Digest): Promise<BlobWriteResult> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const digest = computeDigest(bytes);
    if (expected !== undefined && expected !== digest) throw new DigestMismatchError(expected, digest);
    const result = { digest, size: bytes.byteLength };
    if (await this.has(digest)) return result;
    const ing = this.ingest({ expected: digest, expectedSize: bytes.byteLength });
    ing.end(bytes);
    return ing.commit();
  }

  /** Stores JSON.stringify(value) exactly (no pretty printing), so equal values give equal digests. */
  async writeJson(value: unknown): Promise<BlobWriteResult & { bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value), "utf8");
    return { ...(await this.writeBytes(bytes)), bytes };
  }

  /** A batch of small blobs written synchronously and made durable and visible together by commit(). */
  batch(): BlobBatch {
    return new BlobBatch(this.#ingestDir, (d) => this.path(d), this.#blobsDir);
  }

  /** A Writable into a new temp file; call commit() when done (or abort()). */
  ingest(options: IngestOptions = {}): BlobIngest {
    return new BlobIngest(join(this.#ingestDir, tempName("ingest")), (tmp, digest) => this.#commitTemp(tmp, digest), options);
  }

  async writeStream(
    source: NodeJS.ReadableStream | Readable | AsyncIterable<Uint8Array>,
    options: IngestOptions = {},
  ): Promise<BlobWriteResult> {
    const ing = this.ingest(options);
    try {
      await pipeline(source, ing, options.signal ? { signal: options.signal } : {});
    } catch (err) {
      await ing.abort();
      throw err;
    }
    return ing.commit();
  }

  /** Removes a blob (a composite's record, never its parts); missing blobs are fine (deletes may race with GC). */
  async delete(digest: Digest): Promise<void> {
    await unlinkIfExists(this.path(digest));
    await unlinkIfExists(this.#compositePath(digest));
  }

  async *list(): AsyncIterable<BlobInfo> {
    // opendir streams entries, so huge stores are not listed into one array.
    for await (const entry of await opendir(this.#blobsDir)) {
      const name = entry.name;
      const digest = `sha256:${name}`;
      if (!isDigest(digest)) continue;
      try {
        const st = await stat(join(this.#blobsDir, name));
        yield { digest, size: st.size, mtimeMs: st.mtimeMs };
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err;
      }
    }
  }

  /** Re-hashes the blob; false means the file no longer matches its name. Throws BlobNotFoundError if absent. */
  async verify(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const hash = createHash("sha256");
    await pipeline(this.createReadStream(digest), hash, signal ? { signal } : {});
    return `sha256:${hash.digest("hex")}` === digest;
  }

  /** Removes leftovers of writers that died mid-ingest. Returns the number of temp files removed. */
  async cleanupIngest(options: CleanupIngestOptions = {}): Promise<number> {
    const maxAge = options.maxAgeMs ?? DEFAULT_INGEST_MAX_AGE_MS;
    const now = Date.now();
    let removed = 0;
    for (const name of await readdir(this.#ingestDir)) {
      const path = join(this.#ingestDir, name);
      let mtimeMs: number;
      try {
        mtimeMs = (await stat(path)).mtimeMs;
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue;
        throw err;
      }
      const pid = tempNamePid(name);
      const deadOwner = options.removeDeadOwners === true && pid !== undefined && pid !== process.pid && !isProcessAlive(pid);
      if (now - mtimeMs > maxAge || deadOwner) {
        if (await unlinkIfExists(path)) removed++;
      }
    }
    return removed;
  }

  async #commitTemp(tmp: string, digest: Digest): Promise<void> {
    const target = this.path(digest);
    if (await this.has(digest)) {
      await unlink(tmp);
      return;
    }
    // Read-only blobs guard against consumers of path() editing content in place.
    await chmod(tmp, 0o444);
    // rename() is atomic: concurrent writers of the same digest each replace the file with identical content.
    await rename(tmp, target);
    await fsyncDir(this.#blobsDir);
  }
}
