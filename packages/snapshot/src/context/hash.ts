// Content and metadata digests for cache keys. mtime never enters a digest.
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { ContextEntry } from "./entry.js";

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

/**
 * Digest of one entry: its type, permission bits, owner, symlink target, device number and
 * content hash. Name and timestamps are deliberately left out.
 */
export function entryDigest(entry: ContextEntry, contentSha256: string | undefined): string {
  const h = createHash("sha256");
  const kind = entry.type === "other" ? `other:${(entry.rawMode & 0o170000).toString(8)}:${entry.rdev}` : entry.type;
  h.update(
    `kiln-entry-v1\0${kind}\0${entry.mode.toString(8)}\0${entry.uid}\0${entry.gid}\0${entry.linkname ?? ""}\0${contentSha256 ?? ""}\0`,
  );
  return `sha256:${h.digest("hex")}`;
}

/** Digest of a tree from (relative path, entry digest) pairs; pairs must be sorted by path. */
export function treeDigest(pairs: Iterable<readonly [path: string, digest: string]>): string {
  const h = createHash("sha256");
  h.update("kiln-tree-v1\0");
  for (const [path, digest] of pairs) h.update(`${path}\0${digest}\0`);
  return `sha256:${h.digest("hex")}`;
}
