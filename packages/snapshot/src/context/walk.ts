// Walks a build context the way BuildKit's fsutil sends it: ignored paths are left out,
// excluded directories are only entered when an exception could re-include something
// below them, and an excluded directory is still sent when something inside it is.
import type { Dirent } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { type ContextEntry, comparePaths, entryFromStats } from "./entry.js";
import { Limiter } from "./limiter.js";
import type { MatchInfo, PatternMatcher } from "./pattern-matcher.js";

export interface WalkOptions {
  /** Maximum concurrent filesystem calls (default 64). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** Returns the context's visible entries (without the root), sorted with comparePaths. */
export async function walkContext(
  root: string,
  matcher: PatternMatcher,
  opts: WalkOptions = {},
): Promise<ContextEntry[]> {
  const limiter = new Limiter(opts.concurrency ?? 64);
  const signal = opts.signal;
  const included: ContextEntry[] = [];
  // Excluded directories we had to enter; emitted only if something below is included.
  const excludedDirs = new Map<string, ContextEntry>();
  const filtering = !matcher.isEmpty;

  const statEntry = async (rel: string, abs: string): Promise<ContextEntry | undefined> => {
    try {
      const st = await limiter.run(() => lstat(abs));
      const link = st.isSymbolicLink() ? await limiter.run(() => readlink(abs)) : undefined;
      return entryFromStats(rel, st, link);
    } catch (e) {
      if (isVanished(e)) return undefined; // removed while walking
      throw e;
    }
  };

  const visitDir = async (relDir: string, absDir: string, parentInfo: MatchInfo, excluded: boolean): Promise<void> => {
    signal?.throwIfAborted();
    let dirents: Dirent[];
    try {
      dirents = await limiter.run(() => readdir(absDir, { withFileTypes: true }));
    } catch (e) {
      if (isVanished(e)) return;
      // fsutil tolerates unreadable directories that are excluded anyway.
      if (excluded && (e as NodeJS.ErrnoException).code === "EACCES") return;
      throw e;
    }
    const pending: Array<Promise<void>> = [];
    for (const d of dirents) {
      const rel = relDir === "" ? d.name : `${relDir}/${d.name}`;
      const abs = join(absDir, d.name);
      const isDir = d.isDirectory();
      let isExcluded = false;
      let info: MatchInfo = [];
      if (filtering) {
        const r = matcher.matchesUsingParentResults(rel, parentInfo);
        isExcluded = r.matched;
        info = r.info;
      }
      if (isExcluded && (!isDir || matcher.canPruneExcludedDir(rel))) continue;
      pending.push(
        statEntry(rel, abs).then(async (entry) => {
          if (!entry) return;
          if (isExcluded) excludedDirs.set(rel, entry);
          else included.push(entry);
          if (entry.type === "dir") await visitDir(rel, abs, info, isExcluded);
        }),
      );
    }
    await Promise.all(pending);
  };

  await visitDir("", root, [], false);

  if (excludedDirs.size > 0) {
    const emitted = new Set<string>();
    for (const entry of [...included]) {
      let p = entry.path;
      for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/")) {
        p = p.slice(0, i);
        const dir = excludedDirs.get(p);
        if (!dir || emitted.has(p)) break;
        emitted.add(p);
        included.push(dir);
      }
    }
  }
  included.sort((a, b) => comparePaths(a.path, b.path));
  return included;
}

function isVanished(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
