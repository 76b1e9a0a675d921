import { mkdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { computeDigest, digestHex, parseDigest, type Digest } from "./digest.js";
import { withFileLock } from "./file-lock.js";
import { isErrno, writeFileAtomic } from "./fs-util.js";

export interface BuildStep {
  key: Digest;
  description: string;
}

export interface BuildRecord {
  recordedAt: string;
  steps: BuildStep[];
}

interface HistoryFile {
  identity: string;
  builds: BuildRecord[];
}

export interface BuildHistoryOptions {
  /** How many builds to keep per identity. Default 10. */
  keep?: number;
}

/**
 * The step keys of recent builds, per "build identity" (e.g. context + Dockerfile + target), so a cache miss
 * can be explained against what the previous build of the same thing did. One JSON file per identity under
 * history/, updated read-modify-write under a file lock so concurrent builds do not drop each other's entries.
 */
export class BuildHistory {
  readonly #dir: string;
  readonly #locksDir: string;
  readonly #tmpDir: string;
  readonly #keep: number;

  private constructor(store: BlobStore, keep: number) {
    this.#dir = store.dir("history");
    this.#locksDir = store.dir("locks");
    this.#tmpDir = store.dir("tmp");
    this.#keep = keep;
  }

  static async open(store: BlobStore, options: BuildHistoryOptions = {}): Promise<BuildHistory> {
    const keep = options.keep ?? 10;
    if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
    const h = new BuildHistory(store, keep);
    for (const d of [h.#dir, h.#locksDir, h.#tmpDir]) mkdirSync(d, { recursive: true }); // exist after the first build
    return h;
  }

  /** Appends a build (newest first) and returns it. */
  async record(identity: string, steps: BuildStep[], options: { signal?: AbortSignal } = {}): Promise<BuildRecord> {
    const entry: BuildRecord = {
      recordedAt: new Date().toISOString(),
      steps: steps.map((s) => ({ key: parseDigest(s.key), description: String(s.description) })),
    };
    const id = this.#fileId(identity);
    // A build identical to the latest one (a rebuild with nothing changed) adds nothing to compare with.
    const latest = await this.latest(identity);
    if (latest && sameSteps(latest.steps, entry.steps)) return latest;
    await withFileLock(
      join(this.#locksDir, `history-${id}.lock`),
      async () => {
        const builds = [entry, ...(await this.builds(identity))].slice(0, this.#keep);
        const file: HistoryFile = { identity, builds };
        await writeFileAtomic(join(this.#dir, `${id}.json`), JSON.stringify(file), { tmpDir: this.#tmpDir });
      },
      options,
    );
    return entry;
  }

  /** The most recent build of `identity`, if any. */
  async latest(identity: string): Promise<BuildRecord | undefined> {
    return (await this.builds(identity))[0];
  }

  /** Kept builds of `identity`, newest first. */
  async builds(identity: string): Promise<BuildRecord[]> {
    let text: string;
    try {
      text = readFileSync(join(this.#dir, `${this.#fileId(identity)}.json`), "utf8"); // small and read on every build
    } catch (err) {
      if (isErrno(err, "ENOENT")) return [];
      throw err;
    }
    const file = JSON.parse(text) as HistoryFile;
    // The file name is a hash of the identity; the stored identity guards against any mix-up.
    return file.identity === identity && Array.isArray(file.builds) ? file.builds : [];
  }

  #fileId(identity: string): string {
    return digestHex(computeDigest(identity));
  }
}

function sameSteps(a: BuildStep[], b: BuildStep[]): boolean {
  return a.length === b.length && a.every((s, i) => s.key === b[i]!.key && s.description === b[i]!.description);
}
