import { mkdirSync, readFileSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { computeDigest, digestHex, parseDigest, type Digest } from "./digest.js";
import { CacheError } from "./errors.js";
import { isErrno, unlinkIfExists, writeFileAtomic } from "./fs-util.js";

/** OCI descriptor of a tagged image's manifest (or index). */
export interface TagDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

export interface TagEntry {
  name: string;
  descriptor: TagDescriptor;
  updatedAt: string;
}

export class InvalidTagError extends CacheError {}

/** Longest escaped name kept readable on disk; longer names use a hash (NAME_MAX is 255 bytes). */
const MAX_READABLE_NAME = 200;

/**
 * Local image names → manifest descriptors. One JSON file per tag under tags/, replaced atomically, so
 * concurrent processes setting different tags never interfere and the same tag ends as the last write.
 */
export class TagStore {
  readonly #dir: string;
  readonly #tmpDir: string;

  private constructor(store: BlobStore) {
    this.#dir = store.dir("tags");
    this.#tmpDir = store.dir("tmp");
  }

  static async open(store: BlobStore): Promise<TagStore> {
    const tags = new TagStore(store);
    for (const d of [tags.#dir, tags.#tmpDir]) mkdirSync(d, { recursive: true }); // exist after the first build
    return tags;
  }

  async set(name: string, descriptor: TagDescriptor): Promise<TagEntry> {
    const valid = validateDescriptor(descriptor);
    // Re-tagging the same image (every rebuild with nothing changed) writes nothing.
    const existing = await this.#read(this.#path(name));
    if (existing?.name === name && JSON.stringify(existing.descriptor) === JSON.stringify(valid)) return existing;
    const entry: TagEntry = { name, descriptor: valid, updatedAt: new Date().toISOString() };
    await writeFileAtomic(this.#path(name), JSON.stringify(entry), { tmpDir: this.#tmpDir });
    return entry;
  }

  async get(name: string): Promise<TagDescriptor | undefined> {
    const entry = await this.#read(this.#path(name));
    return entry?.name === name ? entry.descriptor : undefined;
  }

  /** Returns whether the tag existed. */
  async delete(name: string): Promise<boolean> {
    return unlinkIfExists(this.#path(name));
  }

  /** All tags, sorted by name. */
  async list(): Promise<TagEntry[]> {
    const out: TagEntry[] = [];
    for (const file of await readdir(this.#dir)) {
      if (!file.endsWith(".json")) continue;
      const entry = await this.#read(join(this.#dir, file));
      if (entry) out.push(entry);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #path(name: string): string {
    if (typeof name !== "string" || name.length === 0) throw new InvalidTagError("tag name must be a non-empty string");
    return join(this.#dir, `${tagFileName(name)}.json`);
  }

  async #read(path: string): Promise<TagEntry | undefined> {
    try {
      return JSON.parse(readFileSync(path, "utf8")) as TagEntry; // small: no thread-pool round trips
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }
}

/**
 * Reversible, collision-free file name for any tag: bytes outside [A-Za-z0-9._-] become %XX (and so does a
 * leading dot). Names too long for the filesystem become "~<sha256 hex>"; "~" never appears in escaped names.
 */
export function tagFileName(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (out.startsWith(".")) out = `%2E${out.slice(1)}`;
  return out.length > MAX_READABLE_NAME ? `~${digestHex(computeDigest(name))}` : out;
}

function validateDescriptor(d: TagDescriptor): TagDescriptor {
  if (typeof d.mediaType !== "string" || d.mediaType === "") throw new InvalidTagError("descriptor mediaType must be a non-empty string");
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new InvalidTagError(`descriptor size must be a non-negative integer, got ${d.size}`);
  const out: TagDescriptor = { mediaType: d.mediaType, digest: parseDigest(d.digest), size: d.size };
  if (d.annotations !== undefined) out.annotations = { ...d.annotations };
  return out;
}
