import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { digestFromHash, type Digest } from "./digest.js";
import { DigestMismatchError, IngestStateError, SizeMismatchError } from "./errors.js";
import { unlinkIfExists } from "./fs-util.js";

export interface IngestOptions {
  /** Commit fails with DigestMismatchError unless the content hashes to this. */
  expected?: Digest;
  /** Commit fails with SizeMismatchError unless exactly this many bytes arrive (writes fail early on overflow). */
  expectedSize?: number;
  signal?: AbortSignal;
}

export interface BlobWriteResult {
  digest: Digest;
  size: number;
}

/** Moves a verified, fsynced temp file to its content address (or drops it if the blob already exists). */
export type CommitTemp = (tempPath: string, digest: Digest) => Promise<void>;

type IngestState = "open" | "committing" | "committed" | "aborted";

/**
 * A Writable that streams into a temp file under the store's ingest/ directory while hashing. Nothing becomes
 * visible under blobs/ until commit() has verified the content, so a crash or kill at any point leaves at most
 * a temp file (removed by BlobStore.cleanupIngest()).
 */
export class BlobIngest extends Writable {
  readonly tempPath: string;
  readonly #commitTemp: CommitTemp;
  readonly #expected: Digest | undefined;
  readonly #expectedSize: number | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #hash = createHash("sha256");
  #size = 0;
  /** Opened eagerly so abort() can always wait for it and never race the file's creation. */
  readonly #opening: Promise<FileHandle>;
  #fh: FileHandle | undefined;
  #fhClosed = false;
  #state: IngestState = "open";
  #discarding: Promise<void> | undefined;

  constructor(tempPath: string, commitTemp: CommitTemp, options: IngestOptions = {}) {
    // autoDestroy off: 'finish' must not close the file before commit() has fsynced it.
    super({ autoDestroy: false, signal: options.signal });
    this.tempPath = tempPath;
    this.#commitTemp = commitTemp;
    this.#expected = options.expected;
    this.#expectedSize = options.expectedSize;
    this.#signal = options.signal;
    this.#opening = open(tempPath, "wx", 0o644);
    this.#opening.catch(() => undefined); // reported through _construct
  }

  /** Bytes accepted so far. */
  get size(): number {
    return this.#size;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.#opening.then(
      (fh) => {
        if (this.#discarding === undefined) this.#fh = fh;
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#size += chunk.length;
    if (this.#expectedSize !== undefined && this.#size > this.#expectedSize) {
      this.#fail(new SizeMismatchError(this.#expectedSize, this.#size), callback);
      return;
    }
    const fh = this.#fh;
    if (fh === undefined) {
      callback(new IngestStateError("ingest was aborted"));
      return;
    }
    this.#hash.update(chunk);
    writeAll(fh, chunk).then(
      () => callback(),
      (err: Error) => this.#fail(err, callback),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#state === "committed") {
      callback(error);
      return;
    }
    if (this.#state === "open") this.#state = "aborted";
    this.#discard().then(
      () => callback(error),
      (err: Error) => callback(error ?? err),
    );
  }

  /**
   * Ends the stream if needed, waits for pending writes, verifies expected digest/size, fsyncs and moves the
   * file into place. Any failure discards the temp file and rejects.
   */
  async commit(): Promise<BlobWriteResult> {
    if (this.#state !== "open") throw new IngestStateError(`cannot commit an ingest that is ${this.#state}`);
    this.#state = "committing";
    try {
      if (!this.writableEnded && !this.destroyed) this.end();
      await finished(this);
      this.#signal?.throwIfAborted();
      const digest = digestFromHash(this.#hash);
      if (this.#expectedSize !== undefined && this.#size !== this.#expectedSize) {
        throw new SizeMismatchError(this.#expectedSize, this.#size);
      }
      if (this.#expected !== undefined && digest !== this.#expected) {
        throw new DigestMismatchError(this.#expected, digest);
      }
      const fh = this.#fh;
      if (fh === undefined) throw new IngestStateError("ingest was aborted");
      await fh.sync();
      this.#fh = undefined;
      this.#fhClosed = true;
      await fh.close();
      await this.#commitTemp(this.tempPath, digest);
      this.#state = "committed";
      this.destroy();
      return { digest, size: this.#size };
    } catch (err) {
      this.#state = "aborted";
      this.destroy();
      await this.#discard();
      throw err;
    }
  }

  /** Stops the ingest and removes the temp file. A no-op once aborted; an error after a successful commit. */
  async abort(): Promise<void> {
    if (this.#state === "committed") throw new IngestStateError("cannot abort an ingest that is committed");
    if (this.#state === "open") this.#state = "aborted";
    this.destroy();
    await this.#discard();
  }

  #fail(err: Error, callback: (error?: Error | null) => void): void {
    callback(err);
    // With autoDestroy off an errored Writable is not destroyed, so release the temp file ourselves.
    if (this.#state === "open") this.#state = "aborted";
    void this.#discard().catch(() => undefined);
  }

  /** Closes and deletes the temp file once, however many paths ask for it. */
  #discard(): Promise<void> {
    this.#discarding ??= (async () => {
      this.#fh = undefined;
      let fh: FileHandle;
      try {
        fh = await this.#opening;
      } catch {
        return; // never created (e.g. ingest/ missing): nothing to remove
      }
      try {
        if (!this.#fhClosed) {
          this.#fhClosed = true;
          await fh.close();
        }
      } finally {
        await unlinkIfExists(this.tempPath);
      }
    })();
    return this.#discarding;
  }
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.length - offset, null);
    offset += bytesWritten;
  }
}
