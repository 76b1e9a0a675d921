/**
 * Many small blobs written as one durable batch: each is written to its own temp file with synchronous
 * calls (no thread-pool round trip per file), and commit() fsyncs them all, then renames them into place
 * and fsyncs the blobs directory once. Until commit() nothing is visible under blobs/, so a crash or kill
 * leaves only temp files (removed by BlobStore.cleanupIngest). For a layer of a thousand ~1 MiB parts this
 * replaces a thousand open/write/fsync/rename/fsync-dir sequences with one pass.
 */
import { closeSync, chmodSync, existsSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Digest } from "./digest.js";
import { fsyncDir, tempName, unlinkIfExists } from "./fs-util.js";

export class BlobBatch {
  readonly #pending = new Map<Digest, string>();
  #done = false;

  constructor(
    private readonly ingestDir: string,
    private readonly blobPath: (d: Digest) => string,
    private readonly blobsDir: string,
  ) {}

  /** In the store already, or written to this batch. */
  has(digest: Digest): boolean {
    return this.#pending.has(digest) || existsSync(this.blobPath(digest));
  }

  /** Where a blob's bytes are readable now (a pending temp file or the stored blob). */
  readPath(digest: Digest): string {
    return this.#pending.get(digest) ?? this.blobPath(digest);
  }

  /** Adds a blob; `digest` must be the sha256 of `data` (the caller just hashed it). */
  add(data: Uint8Array, digest: Digest): void {
    if (this.#done) throw new Error("blob batch already committed or aborted");
    if (this.has(digest)) return;
    const tmp = join(this.ingestDir, tempName("part"));
    const fd = openSync(tmp, "wx", 0o444);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    } finally {
      closeSync(fd);
    }
    this.#pending.set(digest, tmp);
  }

  get size(): number {
    return this.#pending.size;
  }

  async commit(): Promise<void> {
    if (this.#done) return;
    // Data first (by now most of it is written back), then the names, then the directory entry.
    for (const tmp of this.#pending.values()) {
      const fd = openSync(tmp, "r");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const [digest, tmp] of this.#pending) {
      chmodSync(tmp, 0o444);
      renameSync(tmp, this.blobPath(digest));
    }
    if (this.#pending.size > 0) await fsyncDir(this.blobsDir);
    this.#pending.clear();
    this.#done = true;
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    for (const tmp of this.#pending.values()) await unlinkIfExists(tmp);
    this.#pending.clear();
  }
}
