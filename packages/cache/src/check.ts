// `kiln cache check`: every blob re-hashed against its name, every record's blobs present (or fetchable),
// every tag's manifest present, every record file parseable.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { CacheIndex } from "./cache-index.js";
import { isDigest, type Digest } from "./digest.js";
import { CompositeBlobError } from "./composite.js";
import { BlobNotFoundError } from "./errors.js";
import { isErrno, unlinkIfExists } from "./fs-util.js";
import { recordBlobs } from "./gc-roots.js";
import { RemoteBlobIndex } from "./remote-blobs.js";
import { TagStore } from "./tag-store.js";

export type CheckIssue =
  | { kind: "corrupt-blob"; digest: Digest; detail: string }
  | { kind: "stray-file"; path: string }
  | { kind: "missing-blob"; digest: Digest; record?: Digest; tag?: string }
  | { kind: "corrupt-record"; path: string };

export interface CheckResult {
  blobs: number;
  records: number;
  /** Distinct record blobs that are not local but have a known remote source (not an issue). */
  lazyBlobs: number;
  issues: CheckIssue[];
  ok: boolean;
}

export interface CheckOptions {
  signal?: AbortSignal;
  /**
   * Also repair: delete corrupt blobs, unreadable record files and records whose blobs are gone (a later build
   * rebuilds those steps). Tags without a manifest are reported only.
   */
  repair?: boolean;
}

export async function checkStore(store: BlobStore, options: CheckOptions = {}): Promise<CheckResult> {
  const { signal } = options;
  const issues: CheckIssue[] = [];
  let blobs = 0;
  const blobsDir = join(store.root, "blobs", "sha256");
  for (const name of await readdir(blobsDir)) {
    signal?.throwIfAborted();
    const digest = `sha256:${name}`;
    if (!isDigest(digest)) {
      issues.push({ kind: "stray-file", path: join(blobsDir, name) });
      continue;
    }
    blobs++;
    try {
      const actual = await store.verify(digest, signal);
      if (!actual) {
        issues.push({ kind: "corrupt-blob", digest, detail: "content does not match its digest" });
        if (options.repair) await store.delete(digest);
      }
    } catch (err) {
      if (err instanceof BlobNotFoundError) continue; // removed meanwhile (e.g. by GC)
      if (isErrno(err, "EISDIR", "EACCES", "EIO")) issues.push({ kind: "corrupt-blob", digest, detail: (err as Error).message });
      else throw err;
    }
  }

  // A composite is sound when its record parses, every part is there and the parts hash, in order, to its digest.
  for await (const c of store.listCompositeRecords()) {
    signal?.throwIfAborted();
    blobs++;
    let detail = c.error?.message;
    if (detail === undefined) {
      try {
        if (!(await store.verify(c.digest, signal))) detail = "its parts do not hash to its digest";
      } catch (err) {
        if (err instanceof BlobNotFoundError) {
          if (err.digest === c.digest) continue; // removed meanwhile (e.g. by GC)
          detail = `part ${err.digest} is missing`;
        } else if (err instanceof CompositeBlobError || isErrno(err, "EISDIR", "EACCES", "EIO")) detail = (err as Error).message;
        else throw err;
      }
    }
    if (detail !== undefined) {
      issues.push({ kind: "corrupt-blob", digest: c.digest, detail: `composite: ${detail}` });
      if (options.repair) await store.delete(c.digest);
    }
  }

  const index = await CacheIndex.open(store);
  const remote = await RemoteBlobIndex.open(store);
  let records = 0;
  const lazy = new Set<Digest>();
  const corrupt = await corruptRecordFiles(join(store.dir("index"), "records"));
  issues.push(...corrupt);
  if (options.repair) for (const c of corrupt) if (c.kind === "corrupt-record") await unlinkIfExists(c.path);
  for await (const r of index.list()) {
    signal?.throwIfAborted();
    records++;
    for (const d of recordBlobs(r)) {
      if (await store.has(d)) continue;
      if (await remote.get(d)) lazy.add(d);
      else {
        issues.push({ kind: "missing-blob", digest: d, record: r.key });
        if (options.repair) await index.delete(r.key);
      }
    }
  }
  const tags = await TagStore.open(store);
  for (const t of await tags.list()) {
    if (!(await store.has(t.descriptor.digest))) issues.push({ kind: "missing-blob", digest: t.descriptor.digest, tag: t.name });
  }
  return { blobs, records, lazyBlobs: lazy.size, issues, ok: issues.length === 0 };
}

/** Record files that CacheIndex would silently treat as misses: not JSON, or not a record for their name. */
async function corruptRecordFiles(recordsDir: string): Promise<CheckIssue[]> {
  const out: CheckIssue[] = [];
  for (const shard of await readdir(recordsDir).catch(() => [] as string[])) {
    for (const name of await readdir(join(recordsDir, shard)).catch(() => [] as string[])) {
      const path = join(recordsDir, shard, name);
      let ok = false;
      try {
        const v = JSON.parse(await readFile(path, "utf8")) as { key?: unknown; blobs?: unknown };
        ok = name.endsWith(".json") && v.key === `sha256:${name.slice(0, -5)}` && Array.isArray(v.blobs);
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue;
      }
      if (!ok) out.push({ kind: "corrupt-record", path });
    }
  }
  return out;
}
