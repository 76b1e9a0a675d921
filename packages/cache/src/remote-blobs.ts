// Blobs the store knows how to get but does not hold yet: layers of cache records imported from another
// host ("lazy" records), fetched only when something needs their bytes.
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { digestHex, isDigest, parseDigest, type Digest } from "./digest.js";
import { isErrno, unlinkIfExists, writeFileAtomic } from "./fs-util.js";

/** Where a blob can be fetched from: an OCI layout directory or a registry repository ("host/path"). */
export interface RemoteBlobSource {
  kind: "local" | "registry";
  location: string;
  size: number;
  mediaType: string;
}

const REMOTE_DIR = "remote-blobs";

/** One small JSON file per digest under `<store>/remote-blobs/`, replaced atomically. */
export class RemoteBlobIndex {
  readonly #dir: string;
  readonly #tmpDir: string;
  readonly #store: BlobStore;

  private constructor(store: BlobStore) {
    this.#store = store;
    this.#dir = store.dir(REMOTE_DIR);
    this.#tmpDir = store.dir("tmp");
  }

  static async open(store: BlobStore): Promise<RemoteBlobIndex> {
    const index = new RemoteBlobIndex(store);
    await mkdir(index.#dir, { recursive: true });
    await mkdir(index.#tmpDir, { recursive: true });
    return index;
  }

  async get(digest: Digest): Promise<RemoteBlobSource | undefined> {
    try {
      const v = JSON.parse(await readFile(this.#path(digest), "utf8")) as Partial<RemoteBlobSource>;
      const ok = (v.kind === "local" || v.kind === "registry") && typeof v.location === "string" && Number.isSafeInteger(v.size) && typeof v.mediaType === "string";
      return ok ? (v as RemoteBlobSource) : undefined;
    } catch (err) {
      if (isErrno(err, "ENOENT") || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  async put(digest: Digest, source: RemoteBlobSource): Promise<void> {
    await writeFileAtomic(this.#path(digest), JSON.stringify(source), { tmpDir: this.#tmpDir });
  }

  async delete(digest: Digest): Promise<boolean> {
    return unlinkIfExists(this.#path(digest));
  }

  /** Held locally, or fetchable from a known source. */
  async isAvailable(digest: Digest): Promise<boolean> {
    return (await this.#store.has(digest)) || (await this.get(digest)) !== undefined;
  }

  async *list(): AsyncIterable<{ digest: Digest; source: RemoteBlobSource }> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return;
      throw err;
    }
    for (const name of names) {
      const digest = `sha256:${name.replace(/\.json$/, "")}`;
      if (!name.endsWith(".json") || !isDigest(digest)) continue;
      const source = await this.get(digest);
      if (source) yield { digest, source };
    }
  }

  #path(digest: Digest): string {
    return join(this.#dir, `${digestHex(parseDigest(digest))}.json`);
  }
}
