// Remembers source digests for a whole unchanged context, so a rebuild in which nothing changed
// skips per-file work after the walk (stat cache lookups, entry and tree digests): ~20 ms for a
// 20k-file context, a large part of a warm rebuild.
//
// Validity: a memo is stored with the fingerprint of the walk that produced it — every visible
// path with its type, mode, owner, size, mtime, ctime, inode, device and symlink target, plus the
// root — and only when no entry changed within the racy window before that walk began (git's
// racy-clean rule, as in the stat cache). It is used only by a walk with the same fingerprint.
// So it trusts exactly what the stat cache trusts: a file rewritten in place with its size and
// both timestamps preserved (and its inode) goes unnoticed; any other change, or a path added,
// removed or newly ignored, changes the fingerprint.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { ContextEntry } from "./entry.js";
import { RAW_FIELDS } from "./fast-lstat.js";
import { ENTRY_DIGEST_FORMAT } from "./hash.js";
import type { RawWalk } from "./walk.js";

/** Names every digest format a memo's answers depend on: change it with any of them (kiln-sources-v1, kiln-tree-v1). */
const FORMAT = `kiln-digest-memo-v2 ${ENTRY_DIGEST_FORMAT} kiln-sources-v1 kiln-tree-v1`;
export interface TreeFingerprint {
  /** sha256 (hex) over every entry's path, metadata and stat key. */
  digest: string;
  /** The latest mtime or ctime of any entry (ms): racy if close to when the walk began. */
  newestChangeMs: number;
}

/**
 * Fingerprint of a walked context: its root directory and entry, and every walked path's lstat numbers.
 * `joinedPaths` is walk.paths.join("\0") when the caller has it already.
 */
export function treeFingerprint(rootDir: string, root: ContextEntry, walk: RawWalk, joinedPaths?: string): TreeFingerprint {
  const n = walk.paths.length;
  const nums = walk.nums.subarray(0, n * RAW_FIELDS);
  let newest = Math.max(root.mtimeMs, root.ctimeMs);
  for (let o = 0; o < nums.length; o += RAW_FIELDS) {
    // mtimeMs and ctimeMs (RAW_FIELDS order)
    const m = nums[o + 4] as number;
    const c = nums[o + 5] as number;
    if (m > newest) newest = m;
    if (c > newest) newest = c;
  }
  const h = createHash("sha256").update(`${FORMAT}\0${n}\0${rootDir}\0`);
  h.update(`${root.rawMode}\0${root.uid}\0${root.gid}\0${root.mtimeMs}\0${root.ctimeMs}\0${root.ino}\0${root.dev}\0`);
  // Paths joined by NUL, which no name contains; symlink targets follow, by index.
  h.update(joinedPaths ?? walk.paths.join("\0"));
  for (const [i, target] of walk.links) h.update(`\0${i}\0${target}`);
  h.update(new Uint8Array(nums.buffer, nums.byteOffset, nums.byteLength));
  return { digest: h.digest("hex"), newestChangeMs: newest };
}

/** A remembered digestSources answer (everything but the per-path digests, built on demand). */
export interface MemoizedDigest {
  digest: string;
  sources: { source: string; path: string; digest: string; matches: { path: string; name: string; digest: string }[] }[];
}

interface MemoFile {
  format: string;
  fingerprint: string;
  digests: Record<string, MemoizedDigest>;
}

/** The memo file of one context: digests by request key, for one fingerprint. */
export class DigestMemo {
  private constructor(
    private readonly file: string,
    private readonly fingerprint: string,
    /** Entries valid for `fingerprint` (those of another fingerprint are dropped at load). */
    private readonly digests: Record<string, MemoizedDigest>,
  ) {}

  /** Loads `file` for a context whose walk has `fingerprint`; anything unreadable counts as empty. */
  static load(file: string, fingerprint: string): DigestMemo {
    let digests: Record<string, MemoizedDigest> = {};
    try {
      const m = JSON.parse(readFileSync(file, "utf8")) as Partial<MemoFile>;
      if (m.format === FORMAT && m.fingerprint === fingerprint && m.digests && typeof m.digests === "object") digests = m.digests;
    } catch {
      // missing or corrupt: start empty (the memo is only an accelerator)
    }
    return new DigestMemo(file, fingerprint, digests);
  }

  get(key: string): MemoizedDigest | undefined {
    const d = this.digests[key];
    return d && typeof d.digest === "string" && Array.isArray(d.sources) ? d : undefined;
  }

  /** Stores `value` under `key` and writes the file (atomically: temp file + rename). */
  set(key: string, value: MemoizedDigest): void {
    this.digests[key] = value;
    const data: MemoFile = { format: FORMAT, fingerprint: this.fingerprint, digests: this.digests };
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(tmp, JSON.stringify(data));
      renameSync(tmp, this.file);
    } catch {
      rmSync(tmp, { force: true });
    }
  }
}

/** The memo key of a digestSources request. */
export function memoKey(sources: readonly string[], allowEmptyWildcard: boolean): string {
  return JSON.stringify([sources, allowEmptyWildcard]);
}
