export * from "./errors.js";
export { goClean, goPathMatch, containsWildcards } from "./go-path.js";
export { PatternMatcher, IgnorePattern, isExcludedBy, type MatchInfo, type MatchResult } from "./pattern-matcher.js";
export { parseIgnoreFile, loadIgnoreFile, type IgnoreFileLocation, type LoadedIgnoreFile } from "./ignore-file.js";
export { type ContextEntry, type EntryType, comparePaths } from "./entry.js";
export { walkContext, walkContextSync, type WalkOptions } from "./walk.js";
export { ContextTree } from "./tree.js";
export { type ResolvedSource, type ResolvedMatch, type SourceFile, type ResolveOptions, type StreamedSource } from "./resolve.js";
export { entryDigest, treeDigest, hashFileContent, EMPTY_SHA256, ENTRY_DIGEST_FORMAT } from "./hash.js";
export { StatCache, DEFAULT_RACY_WINDOW_MS, type StatKey, type EntryStatKey, type StatCacheOptions } from "./stat-cache.js";
export {
  BuildContext,
  diffSourceDigests,
  type OpenContextOptions,
  type SourcesDigest,
  type SourceDigest,
  type MatchDigest,
  type DigestChange,
  type DigestOptions,
} from "./build-context.js";
