// Walks a build context the way BuildKit's fsutil sends it: ignored paths are left out,
// excluded directories are only entered when an exception could re-include something
// below them, and an excluded directory is still sent when something inside it is.
//
// The walk is synchronous on purpose: a warm rebuild is dominated by ~1 lstat per path, and
// lstatSync in a tight loop costs a few µs per call where the promise API (thread pool hop,
// promise, limiter) costs several times that and allocates far more (measured on a 13k-file
// context: ~40 ms vs ~300 ms). Siblings are visited in sorted order, so the depth-first result
// is already in comparePaths order and needs no global sort.
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { type ContextEntry, entryFromStats } from "./entry.js";
import type { MatchInfo, MatchResult, PatternMatcher } from "./pattern-matcher.js";

export interface WalkOptions {
  /** Accepted for compatibility; the walk is synchronous and makes one call at a time. */
  concurrency?: number;
  signal?: AbortSignal;
}

const NO_THROW = { throwIfNoEntry: false } as const;
const NOT_MATCHED: MatchResult = { matched: false, info: [] };

/** Returns the context's visible entries (without the root), sorted with comparePaths. */
export async function walkContext(root: string, matcher: PatternMatcher, opts: WalkOptions = {}): Promise<ContextEntry[]> {
  return walkContextSync(root, matcher, opts);
}

/** walkContext without the promise: blocks while it lstats every visible path once. */
export function walkContextSync(root: string, matcher: PatternMatcher, opts: WalkOptions = {}): ContextEntry[] {
  const signal = opts.signal;
  const out: ContextEntry[] = [];
  const filtering = !matcher.isEmpty;

  const statEntry = (rel: string, abs: string): ContextEntry | undefined => {
    try {
      const st = lstatSync(abs, NO_THROW);
      if (!st) return undefined; // removed while walking
      return entryFromStats(rel, st, st.isSymbolicLink() ? readlinkSync(abs) : undefined);
    } catch (e) {
      if (isVanished(e)) return undefined;
      throw e;
    }
  };

  const visitDir = (relDir: string, absDir: string, parentInfo: MatchInfo, excluded: boolean): void => {
    signal?.throwIfAborted();
    const names = readDir(absDir, excluded);
    if (!names) return;
    names.sort(); // UTF-16 order, which makes the depth-first output comparePaths-sorted
    const prefix = relDir === "" ? "" : `${relDir}/`;
    const absPrefix = absDir.endsWith("/") ? absDir : `${absDir}/`;
    for (const name of names) {
      const rel = prefix + name;
      const r = filtering ? matcher.matchesUsingParentResults(rel, parentInfo) : NOT_MATCHED;
      // An excluded path is skipped unless it is a directory an exception may reach into.
      if (r.matched && matcher.canPruneExcludedDir(rel)) continue;
      const entry = statEntry(rel, absPrefix + name);
      if (!entry || (r.matched && entry.type !== "dir")) continue;
      // An excluded directory goes in provisionally and is dropped again if nothing below it is sent.
      const at = out.length;
      out.push(entry);
      if (entry.type === "dir") visitDir(rel, absPrefix + name, r.info, r.matched);
      if (r.matched && out.length === at + 1) out.pop();
    }
  };

  visitDir("", root, [], false);
  return out;
}

function readDir(absDir: string, excluded: boolean): string[] | undefined {
  try {
    return readdirSync(absDir);
  } catch (e) {
    if (isVanished(e)) return undefined;
    // fsutil tolerates unreadable directories that are excluded anyway.
    if (excluded && (e as NodeJS.ErrnoException).code === "EACCES") return undefined;
    throw e;
  }
}

function isVanished(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
