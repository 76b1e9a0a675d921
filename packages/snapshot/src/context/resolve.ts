// COPY/ADD source resolution with BuildKit's rules: sources are cleaned against the context
// root ("../x" becomes "/x"), wildcards use Go path.Match, a named source that is a symlink
// is followed inside the context, and directory contents keep their symlinks as symlinks.
import { posix } from "node:path";
import type { ContextEntry } from "./entry.js";
import { SourceNotFoundError } from "./errors.js";
import { containsWildcards, goClean, goPathMatch } from "./go-path.js";
import type { WalkIndex } from "./walk-index.js";

export interface SourceFile {
  /** Path relative to the matched source directory. */
  relPath: string;
  entry: ContextEntry;
}

export interface ResolvedMatch {
  /** Context-relative path as named or matched, before following a final symlink ("" = root). */
  path: string;
  /** Name the engine uses for the destination when copying into a directory. */
  name: string;
  /** Context-relative path after following symlinks. */
  resolvedPath: string;
  /** The resolved entry: a file, directory or special file (never a followed symlink). */
  entry: ContextEntry;
  /** For a directory: everything below it (ignored paths excluded), in tree order. */
  contents: SourceFile[];
}

export interface ResolvedSource {
  /** The source exactly as written in the instruction. */
  source: string;
  /** Cleaned, context-absolute form ("/x"), as BuildKit names it in errors. */
  path: string;
  wildcard: boolean;
  /** One match for a plain path; zero or more for a wildcard, in tree order. */
  matches: ResolvedMatch[];
}

export interface ResolveOptions {
  /**
   * BuildKit's Dockerfile front end lets a wildcard match nothing (the source is just
   * skipped). Set false to make an empty wildcard a SourceNotFoundError.
   */
  allowEmptyWildcard?: boolean;
}

/**
 * A match located in the walk: `index` is its resolved entry (ROOT for the context root) and, for a
 * directory, its contents are the walk indices (index, end), named relative to it by cutting `cut`
 * characters off their paths.
 */
export interface WalkMatch {
  path: string;
  name: string;
  resolvedPath: string;
  index: number;
  end: number;
  cut: number;
}

export interface WalkSource {
  source: string;
  path: string;
  wildcard: boolean;
  matches: WalkMatch[];
}

/** Resolves `sources` against the walk, as indices (no per-entry objects). */
export function resolveInWalk(walk: WalkIndex, sources: readonly string[], opts: ResolveOptions = {}): WalkSource[] {
  return sources.map((s) => resolveSource(walk, s, opts.allowEmptyWildcard ?? true));
}

/** The public form of a resolved source: entry objects and named contents. */
export function materializeSource(walk: WalkIndex, src: WalkSource): ResolvedSource {
  return {
    source: src.source,
    path: src.path,
    wildcard: src.wildcard,
    matches: src.matches.map((m) => {
      const contents: SourceFile[] = [];
      for (let k = m.index + 1; k < m.end; k++) contents.push({ relPath: walk.path(k).slice(m.cut), entry: walk.entry(k) });
      return { path: m.path, name: m.name, resolvedPath: m.resolvedPath, entry: walk.entry(m.index), contents };
    }),
  };
}

/** A ResolvedSource whose matches list their contents as they are iterated (see BuildContext.streamSources). */
export interface StreamedSource extends Omit<ResolvedSource, "matches"> {
  matches: (Omit<ResolvedMatch, "contents"> & { contents: Iterable<SourceFile> })[];
}

/**
 * materializeSource with contents made while iterated: a large COPY turns each into its own node at once,
 * so the 20k entry objects die young instead of all living (and being promoted by the GC) until the end.
 */
export function streamSource(walk: WalkIndex, src: WalkSource): StreamedSource {
  return {
    source: src.source,
    path: src.path,
    wildcard: src.wildcard,
    matches: src.matches.map((m) => ({
      path: m.path,
      name: m.name,
      resolvedPath: m.resolvedPath,
      entry: walk.entry(m.index),
      contents: {
        *[Symbol.iterator]() {
          for (let k = m.index + 1; k < m.end; k++) yield { relPath: walk.path(k).slice(m.cut), entry: walk.freshEntry(k) };
        },
      },
    })),
  };
}

function resolveSource(walk: WalkIndex, source: string, allowEmptyWildcard: boolean): WalkSource {
  const abs = goClean(`/${source}`);
  const rel = abs.slice(1);
  if (!containsWildcards(rel)) {
    return { source, path: abs, wildcard: false, matches: [followMatch(walk, rel, rel, source)] };
  }
  const parts = rel.split("/");
  const firstGlob = parts.findIndex(containsWildcards);
  const prefix = parts.slice(0, firstGlob).join("/");
  const matches: WalkMatch[] = [];
  // The literal prefix may itself go through symlinks; candidates are then renamed back
  // to the prefix as written so the pattern applies to what the user typed.
  const real = walk.resolve(prefix, true);
  if (real !== undefined && walk.isDir(real.index)) {
    const cut = real.path === "" ? 0 : real.path.length + 1;
    let lastMatched: string | undefined;
    for (let k = real.index + 1, end = walk.subtreeEnd(real.index); k < end; k++) {
      const path = walk.path(k);
      const after = cut === 0 ? path : path.slice(cut);
      const named = prefix === "" ? after : `${prefix}/${after}`;
      if (lastMatched !== undefined && named.startsWith(`${lastMatched}/`)) continue;
      if (!goPathMatch(rel, named)) continue;
      lastMatched = named;
      matches.push(followMatch(walk, named, path, source));
    }
  }
  if (matches.length === 0 && !allowEmptyWildcard) throw new SourceNotFoundError(abs, source);
  return { source, path: abs, wildcard: true, matches };
}

/** Builds a match for `named`, whose own (unresolved) context path is `real`. */
function followMatch(walk: WalkIndex, named: string, real: string, source: string): WalkMatch {
  const resolved = walk.resolve(real, true);
  if (resolved === undefined) throw new SourceNotFoundError(`/${named}`, source);
  const { path: resolvedPath, index } = resolved;
  const end = walk.isDir(index) ? walk.subtreeEnd(index) : index + 1;
  const cut = resolvedPath === "" ? 0 : resolvedPath.length + 1;
  return { path: named, name: named === "" ? "" : posix.basename(named), resolvedPath, index, end, cut };
}
