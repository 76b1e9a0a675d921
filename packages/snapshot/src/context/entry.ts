import type { Stats } from "node:fs";
import { constants } from "node:fs";

export type EntryType = "file" | "dir" | "symlink" | "other";

/** One path of the build context, as lstat saw it (symlinks are never followed). */
export interface ContextEntry {
  /** Slash-separated path relative to the context root; "" for the root itself. */
  readonly path: string;
  readonly type: EntryType;
  /** Permission bits including setuid/setgid/sticky (st_mode & 0o7777). */
  readonly mode: number;
  /** Full st_mode (file type bits included), for "other" entries such as fifos or devices. */
  readonly rawMode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
  readonly rdev: number;
  readonly nlink: number;
  /** Symlink target, verbatim. */
  readonly linkname?: string;
}

export function entryTypeOf(st: Pick<Stats, "mode">): EntryType {
  const fmt = st.mode & constants.S_IFMT;
  if (fmt === constants.S_IFREG) return "file";
  if (fmt === constants.S_IFDIR) return "dir";
  if (fmt === constants.S_IFLNK) return "symlink";
  return "other";
}

export function entryFromStats(path: string, st: Stats, linkname?: string): ContextEntry {
  const entry: ContextEntry = {
    path,
    type: entryTypeOf(st),
    mode: st.mode & 0o7777,
    rawMode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    ino: st.ino,
    dev: st.dev,
    rdev: st.rdev,
    nlink: st.nlink,
  };
  return linkname === undefined ? entry : { ...entry, linkname };
}

/**
 * Orders paths as a depth-first tree walk: "/" sorts before every other character, so a
 * directory's children come right after it ("a", "a/b", "a-b").
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 47) return -1;
    if (cb === 47) return 1;
    return ca - cb;
  }
  return a.length - b.length;
}
