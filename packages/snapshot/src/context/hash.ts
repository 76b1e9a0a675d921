// Content and metadata digests for cache keys. mtime never enters a digest.
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import type { ContextEntry, EntryType } from "./entry.js";

export const EMPTY_SHA256 = createHash("sha256").digest("hex");

/**
 * sha256 (hex) of a file's content, read in chunks through `buf` so memory stays bounded
 * whatever the file size.
 */
export async function hashFileContent(absPath: string, buf: Buffer, signal?: AbortSignal): Promise<string> {
  const h = createHash("sha256");
  const fh = await open(absPath, "r");
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest("hex");
}

/** hashFileContent for synchronous callers (rare: a remembered digest whose per-path digests are asked for). */
export function hashFileContentSync(absPath: string, buf: Buffer): string {
  const h = createHash("sha256");
  const fd = openSync(absPath, "r");
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(n === buf.length ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Names the entry digest input format; stat caches that store entry digests key on it. */
export const ENTRY_DIGEST_FORMAT = "kiln-entry-v1";

/**
 * Digest of one entry: its type, permission bits, owner, symlink target, device number and
 * content hash. Name and timestamps are deliberately left out.
 */
export function entryDigest(entry: ContextEntry, contentSha256: string | undefined): string {
  return digestOfEntryInput(entryDigestInput(entry, contentSha256));
}

/** The exact bytes entryDigest hashes (callers memoize digests by it). */
export function entryDigestInput(entry: ContextEntry, contentSha256: string | undefined): string {
  return entryDigestInputOf(entry.type, entry.mode, entry.rawMode, entry.uid, entry.gid, entry.rdev, entry.linkname, contentSha256);
}

/** entryDigestInput from an entry's fields (the walk's raw columns need no entry object). */
export function entryDigestInputOf(
  type: EntryType,
  /** Permission bits (st_mode & 0o7777). */
  mode: number,
  rawMode: number,
  uid: number,
  gid: number,
  rdev: number,
  linkname: string | undefined,
  contentSha256: string | undefined,
): string {
  const kind = type === "other" ? `other:${(rawMode & 0o170000).toString(8)}:${rdev}` : type;
  return `${ENTRY_DIGEST_FORMAT}\0${kind}\0${mode.toString(8)}\0${uid}\0${gid}\0${linkname ?? ""}\0${contentSha256 ?? ""}\0`;
}

export function digestOfEntryInput(input: string): string {
  return `sha256:${createHash("sha256").update(input).digest("hex")}`;
}

/** Digest of a tree from (relative path, entry digest) pairs; pairs must be sorted by path. */
export function treeDigest(pairs: Iterable<readonly [path: string, digest: string]>): string {
  const t = new TreeHasher();
  for (const [path, digest] of pairs) t.add(path, digest);
  return t.digest();
}

/** treeDigest built incrementally, without materializing the pairs. */
export class TreeHasher {
  private readonly h = createHash("sha256").update("kiln-tree-v1\0");
  // Fed in ~64 KiB batches: 13k tiny update() calls cost more in call overhead than in hashing.
  private batch = "";

  add(path: string, digest: string): void {
    this.batch += `${path}\0${digest}\0`;
    if (this.batch.length >= 65_536) {
      this.h.update(this.batch);
      this.batch = "";
    }
  }

  digest(): string {
    if (this.batch !== "") this.h.update(this.batch);
    this.batch = "";
    return `sha256:${this.h.digest("hex")}`;
  }
}

/** Entries per hash update in treeDigestOfColumns: bounded memory, few calls. */
const TREE_CHUNK = 4096;

/**
 * treeDigest of ("", rootDigest) followed by (paths[k].slice(cut), digests[k]) for k in [from, to): the
 * same bytes TreeHasher hashes, joined natively in chunks instead of appended pair by pair.
 */
export function treeDigestOfColumns(rootDigest: string, paths: readonly string[], digests: readonly string[], from: number, to: number, cut: number): string {
  const h = createHash("sha256").update(`kiln-tree-v1\0\0${rootDigest}\0`);
  const parts: string[] = [];
  for (let k = from; k < to; k += TREE_CHUNK) {
    const end = Math.min(to, k + TREE_CHUNK);
    parts.length = 0;
    for (let i = k; i < end; i++) parts.push(cut === 0 ? (paths[i] as string) : (paths[i] as string).slice(cut), digests[i] as string);
    parts.push(""); // the trailing NUL after the last digest
    h.update(parts.join("\0"));
  }
  return `sha256:${h.digest("hex")}`;
}
