// COPY/ADD source resolution with BuildKit's rules: sources are cleaned against the context
// root ("../x" becomes "/x"), wildcards use Go path.Match, a named source that is a symlink
// is followed inside the context, and directory contents keep their symlinks as symlinks.
import { posix } from "node:path";
import type { ContextEntry } from "./entry.js";
import { SourceNotFoundError } from "./errors.js";
import { containsWildcards, goClean, goPathMatch } from "./go-path.js";
import type { ContextTree } from "./tree.js";

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

export function resolveSources(
  tree: ContextTree,
  sources: readonly string[],
  opts: ResolveOptions = {},
): ResolvedSource[] {
  return sources.map((s) => resolveSource(tree, s, opts.allowEmptyWildcard ?? true));
}

function resolveSource(tree: ContextTree, source: string, allowEmptyWildcard: boolean): ResolvedSource {
  const abs = goClean(`/${source}`);
  const rel = abs.slice(1);
  if (!containsWildcards(rel)) {
    return { source, path: abs, wildcard: false, matches: [followMatch(tree, rel, rel, source)] };
  }
  const parts = rel.split("/");
  const firstGlob = parts.findIndex(containsWildcards);
  const prefix = parts.slice(0, firstGlob).join("/");
  const matches: ResolvedMatch[] = [];
  // The literal prefix may itself go through symlinks; candidates are then renamed back
  // to the prefix as written so the pattern applies to what the user typed.
  const realPrefix = tree.resolve(prefix, true);
  if (realPrefix !== undefined && tree.get(realPrefix)?.type === "dir") {
    let lastMatched: string | undefined;
    for (const entry of tree.descendants(realPrefix)) {
      const after = realPrefix === "" ? entry.path : entry.path.slice(realPrefix.length + 1);
      const named = prefix === "" ? after : `${prefix}/${after}`;
      if (lastMatched !== undefined && named.startsWith(`${lastMatched}/`)) continue;
      if (!goPathMatch(rel, named)) continue;
      lastMatched = named;
      matches.push(followMatch(tree, named, entry.path, source));
    }
  }
  if (matches.length === 0 && !allowEmptyWildcard) throw new SourceNotFoundError(abs, source);
  return { source, path: abs, wildcard: true, matches };
}

/** Builds a match for `named`, whose own (unresolved) context path is `real`. */
function followMatch(tree: ContextTree, named: string, real: string, source: string): ResolvedMatch {
  const resolvedPath = tree.resolve(real, true);
  const entry = resolvedPath === undefined ? undefined : tree.get(resolvedPath);
  if (resolvedPath === undefined || !entry) throw new SourceNotFoundError(`/${named}`, source);
  const contents: SourceFile[] = [];
  if (entry.type === "dir") {
    const cut = resolvedPath === "" ? 0 : resolvedPath.length + 1;
    for (const e of tree.descendants(resolvedPath)) contents.push({ relPath: e.path.slice(cut), entry: e });
  }
  return { path: named, name: named === "" ? "" : posix.basename(named), resolvedPath, entry, contents };
}
