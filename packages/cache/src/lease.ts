// Leases: what a running build uses or creates, so a concurrent GC in another process never removes it.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { parseDigest, type Digest } from "./digest.js";
import { CacheError } from "./errors.js";
import { withFileLock, type FileLockOptions } from "./file-lock.js";
import { isErrno, unlinkIfExists, writeFileAtomic } from "./fs-util.js";
import { isProcessAlive } from "./process.js";

export class LeaseReleasedError extends CacheError {
  constructor(readonly id: string) {
    super(`lease ${id} was already released`);
  }
}

interface LeaseFile {
  version: 1;
  pid: number;
  hostname: string;
  /** Kernel start time of the pid (from /proc), so a recycled pid does not keep a dead lease alive. */
  startTime?: string;
  createdAt: string;
  updatedAt: string;
  digests: Digest[];
}

/** A lease as GC sees it. */
export interface LeaseInfo {
  id: string;
  path: string;
  pid: number;
  hostname: string;
  createdAtMs: number;
  digests: Digest[];
  /** False when the holder is gone (dead pid on this host, or a foreign lease past its maximum age). */
  alive: boolean;
}

export interface ReadLeasesOptions {
  /** Leases of other hosts (shared stores) count as dead once not updated for this long. Default 24 hours. */
  foreignMaxAgeMs?: number;
}

const LEASES_DIR = "leases";
const GC_LOCK = "gc.lock";
const DEFAULT_FOREIGN_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * Lease edits and GC's sweep take this lock, so a digest added to a lease before the sweep's final lease
 * read is always seen, and one added after it finds the blob either kept or already gone (never both).
 */
export function gcLockPath(store: BlobStore): string {
  return join(store.dir("locks"), GC_LOCK);
}

/** Kernel start time of `pid` in clock ticks since boot, or undefined where /proc is not available. */
export function processStartTime(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may hold spaces and parens: the fields after it follow the last ')'.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

/**
 * A running build's claim on digests (blobs, and diffIDs of unpacked layers) in a store. The lease file
 * `<store>/leases/<pid>-<rand>.json` is replaced atomically on every change; GC treats the digests of live
 * leases as roots, and blobs written after the oldest live lease began as in use (they may not be added yet).
 */
export class Lease {
  readonly id: string;
  readonly path: string;
  readonly #store: BlobStore;
  readonly #file: LeaseFile;
  readonly #digests = new Set<Digest>();
  /** Serialises this lease's writes so the last file on disk holds every digest added so far. */
  #writing: Promise<void> = Promise.resolve();
  #released = false;

  private constructor(store: BlobStore, id: string, file: LeaseFile) {
    this.#store = store;
    this.id = id;
    this.path = join(store.dir(LEASES_DIR), `${id}.json`);
    this.#file = file;
  }

  static async acquire(store: BlobStore, options: Pick<FileLockOptions, "signal"> = {}): Promise<Lease> {
    await mkdir(store.dir(LEASES_DIR), { recursive: true });
    const now = new Date().toISOString();
    const startTime = processStartTime(process.pid);
    const file: LeaseFile = {
      version: 1,
      pid: process.pid,
      hostname: hostname(),
      ...(startTime !== undefined ? { startTime } : {}),
      createdAt: now,
      updatedAt: now,
      digests: [],
    };
    const lease = new Lease(store, `${process.pid}-${randomBytes(6).toString("hex")}`, file);
    await lease.#write(options);
    return lease;
  }

  get createdAt(): Date {
    return new Date(this.#file.createdAt);
  }

  get digests(): ReadonlySet<Digest> {
    return this.#digests;
  }

  /**
   * Adds digests to the lease (durably, under the GC lock). Call it BEFORE relying on an existing blob (check
   * `has()` after adding), and right after writing a new one.
   */
  async add(digests: Iterable<string>, options: Pick<FileLockOptions, "signal"> = {}): Promise<void> {
    if (this.#released) throw new LeaseReleasedError(this.id);
    let changed = false;
    for (const d of digests) {
      const digest = parseDigest(d);
      if (!this.#digests.has(digest)) {
        this.#digests.add(digest);
        changed = true;
      }
    }
    if (changed) await this.#write(options);
  }

  /** Removes the lease file; the digests are unprotected from then on. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#writing.catch(() => undefined);
    await unlinkIfExists(this.path);
  }

  #write(options: Pick<FileLockOptions, "signal">): Promise<void> {
    const next = this.#writing.catch(() => undefined).then(async () => {
      if (this.#released) return;
      this.#file.updatedAt = new Date().toISOString();
      this.#file.digests = [...this.#digests];
      const data = JSON.stringify(this.#file);
      await withFileLock(gcLockPath(this.#store), () => writeFileAtomic(this.path, data, { tmpDir: this.#store.dir("tmp"), durable: false }), options);
    });
    this.#writing = next;
    return next;
  }
}

/** Every lease file in the store, with whether its holder is still alive. Unreadable files are skipped. */
export async function readLeases(store: BlobStore, options: ReadLeasesOptions = {}): Promise<LeaseInfo[]> {
  const dir = store.dir(LEASES_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return [];
    throw err;
  }
  const maxAge = options.foreignMaxAgeMs ?? DEFAULT_FOREIGN_MAX_AGE_MS;
  const host = hostname();
  const out: LeaseInfo[] = [];
  for (const name of names) {
    if (!name.endsWith(".json")) continue;
    const path = join(dir, name);
    let file: LeaseFile;
    let mtimeMs: number;
    try {
      [file, mtimeMs] = await Promise.all([readFile(path, "utf8").then((t) => JSON.parse(t) as LeaseFile), stat(path).then((s) => s.mtimeMs)]);
    } catch (err) {
      if (isErrno(err, "ENOENT") || err instanceof SyntaxError) continue;
      throw err;
    }
    if (typeof file.pid !== "number" || !Array.isArray(file.digests)) continue;
    let alive: boolean;
    if (file.hostname === host) {
      alive = isProcessAlive(file.pid);
      if (alive && file.startTime !== undefined) {
        const now = processStartTime(file.pid);
        if (now !== undefined && now !== file.startTime) alive = false; // the pid was reused
      }
    } else {
      alive = Date.now() - mtimeMs < maxAge;
    }
    out.push({
      id: name.slice(0, -".json".length),
      path,
      pid: file.pid,
      hostname: file.hostname,
      createdAtMs: Date.parse(file.createdAt),
      digests: file.digests,
      alive,
    });
  }
  return out;
}

/** Deletes the lease files of dead holders; returns how many. */
export async function removeDeadLeases(store: BlobStore, options: ReadLeasesOptions = {}): Promise<number> {
  let removed = 0;
  for (const lease of await readLeases(store, options)) {
    if (!lease.alive && (await unlinkIfExists(lease.path))) removed++;
  }
  return removed;
}
