// A walked, filtered build context: the set of paths BuildKit would transfer, plus COPY
// source resolution and content digests for cache keys.
import { createHash } from "node:crypto";
import { realpath, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type ContextEntry, entryFromStats } from "./entry.js";
import { BuildContextError } from "./errors.js";
import { goClean } from "./go-path.js";
import { DigestMemo, type MemoizedDigest, memoKey, treeFingerprint } from "./digest-memo.js";
import { EMPTY_SHA256, TreeHasher, digestOfEntryInput, entryDigestInput, hashFileContentSync } from "./hash.js";
import { loadIgnoreFile } from "./ignore-file.js";
import { PatternMatcher } from "./pattern-matcher.js";
import { type ResolveOptions, type ResolvedMatch, type ResolvedSource, resolveSources } from "./resolve.js";
import { DEFAULT_RACY_WINDOW_MS, StatCache } from "./stat-cache.js";
import { ContextTree } from "./tree.js";
import { type RawWalk, rawWalkEntries, walkContextRawAsync } from "./walk.js";

export interface OpenContextOptions {
  /** The Dockerfile (absolute, or relative to the context); `<Dockerfile>.dockerignore` is preferred when present. */
  dockerfile?: string;
  /** Explicit ignore file (absolute, or relative to the context); it must exist. */
  dockerignoreFile?: string;
  /** Use these patterns instead of reading any ignore file. */
  ignorePatterns?: readonly string[];
  /**
   * Persist content hashes here so unchanged files are not re-read on the next build; source
   * digests of a wholly unchanged context are remembered next to it (`<file>.memo`).
   */
  statCacheFile?: string;
  /** Files whose timestamps are this close to hashing time are re-hashed next time (default 1000). */
  racyWindowMs?: number;
  /** Accepted for compatibility; the walk is synchronous (see walk.ts). */
  walkConcurrency?: number;
  /** Ignored: files are hashed with synchronous reads, one at a time (kept so existing callers compile). */
  hashConcurrency?: number;
  /** Called each time a file's content is actually read for hashing. */
  onContentRead?: (path: string) => void;
  signal?: AbortSignal;
}

export interface MatchDigest {
  /** Context path as named/matched. */
  path: string;
  name: string;
  digest: string;
}

export interface SourceDigest {
  source: string;
  path: string;
  digest: string;
  matches: MatchDigest[];
}

export interface SourcesDigest {
  /** One digest over all sources (names as the destination sees them + content). */
  digest: string;
  sources: SourceDigest[];
  /** Entry digest of every context path that contributed, keyed by resolved path ("" = root). */
  paths: Record<string, string>;
}

export interface DigestOptions extends ResolveOptions {
  signal?: AbortSignal;
  /**
   * Leave the stat cache's write for flushCaches() instead of doing it here: a build saves it while other work
   * waits (it only speeds up the next build; a crash before the flush just means rehashing then).
   */
  deferCacheSave?: boolean;
}

export interface DigestChange {
  added: string[];
  removed: string[];
  changed: string[];
}

const HASH_CHUNK = 256 * 1024;

export class BuildContext {
  private readonly contentMemo = new Map<string, string>();
  /** Entry digests of files, by path (from the stat cache or computed). */
  private readonly fileDigestMemo = new Map<string, string>();
  /** Digests of non-file entries by their digest input: most directories share one. */
  private readonly metaDigestMemo = new Map<string, string>();
  private statCacheValue: StatCache | undefined;
  /** Distinct files whose stat cache row this context looked up with a hit or (re)recorded. */
  private confirmedRows = 0;
  private memoValue: { memo: DigestMemo; racy: boolean } | null | undefined;

  private constructor(
    /** Absolute, symlink-free path of the context directory. */
    readonly root: string,
    /** The ignore patterns in effect (already parsed). */
    readonly ignorePatterns: readonly string[],
    /** The ignore file that was read, if any. */
    readonly dockerignorePath: string | undefined,
    private readonly matcher: PatternMatcher,
    private readonly rootEntry: ContextEntry,
    /** The walk as columns; entry objects are made only if something needs them (not a memo hit). */
    private readonly walk: RawWalk,
    private readonly opts: OpenContextOptions,
    /** Date.now() just before the walk began (memos of entries changed close to it are not kept). */
    private readonly walkStartedMs: number,
  ) {}

  private treeValue: ContextTree | undefined;

  private get tree(): ContextTree {
    this.treeValue ??= new ContextTree(this.rootEntry, rawWalkEntries(this.walk));
    return this.treeValue;
  }

  /** The digest memo for this walk (undefined without a stat cache file); loaded on first use. */
  private get memo(): { memo: DigestMemo; racy: boolean } | undefined {
    if (this.memoValue === undefined) {
      const file = this.opts.statCacheFile;
      if (!file) this.memoValue = null;
      else {
        const fp = treeFingerprint(this.root, this.rootEntry, this.walk);
        const racy = fp.newestChangeMs >= this.walkStartedMs - (this.opts.racyWindowMs ?? DEFAULT_RACY_WINDOW_MS);
        this.memoValue = { memo: DigestMemo.load(`${file}.memo`, fp.digest), racy };
      }
    }
    return this.memoValue ?? undefined;
  }

  /** Loaded on first use: a build that copies nothing from the context never reads it. */
  private get statCache(): StatCache {
    const cacheOpts = { racyWindowMs: this.opts.racyWindowMs };
    this.statCacheValue ??= this.opts.statCacheFile
      ? StatCache.loadSync(this.opts.statCacheFile, cacheOpts)
      : StatCache.inMemory(cacheOpts);
    return this.statCacheValue;
  }

  static async open(dir: string, opts: OpenContextOptions = {}): Promise<BuildContext> {
    let root: string;
    let rootEntry: ContextEntry;
    try {
      root = await realpath(resolve(dir));
      const st = await stat(root);
      if (!st.isDirectory()) throw new BuildContextError(`build context ${dir} is not a directory`);
      rootEntry = entryFromStats("", st);
    } catch (e) {
      if (e instanceof BuildContextError) throw e;
      throw new BuildContextError(`cannot open build context ${dir}`, { cause: e });
    }
    let patterns: string[];
    let ignorePath: string | undefined;
    if (opts.ignorePatterns) patterns = [...opts.ignorePatterns];
    else {
      const loaded = await loadIgnoreFile({
        contextDir: root,
        dockerfile: opts.dockerfile,
        dockerignoreFile: opts.dockerignoreFile,
      });
      patterns = loaded.patterns;
      ignorePath = loaded.path;
    }
    const matcher = PatternMatcher.from(patterns);
    const walkStartedMs = Date.now();
    const walk = await walkContextRawAsync(root, matcher, { signal: opts.signal });
    return new BuildContext(root, patterns, ignorePath, matcher, rootEntry, walk, opts, walkStartedMs);
  }

  /** Every transferred path (root excluded) in tree order. */
  entries(): readonly ContextEntry[] {
    return this.tree.entries;
  }

  /** The entry at a context-relative path ("" = root), undefined if absent or ignored. */
  get(path: string): ContextEntry | undefined {
    const p = goClean(`/${path}`).slice(1);
    return this.tree.get(p);
  }

  /** Does the ignore file exclude `path` (relative to the context)? */
  isIgnored(path: string): boolean {
    const p = goClean(path);
    if (p === "." || p === "/") return false;
    return this.matcher.matchesOrParentMatches(p);
  }

  resolveSources(sources: readonly string[], opts?: ResolveOptions): ResolvedSource[] {
    return resolveSources(this.tree, sources, opts);
  }

  /**
   * Resolves `sources` and digests them for a cache key. Files are hashed by content
   * (reusing the stat cache when their lstat key is unchanged); mtime never matters.
   */
  async digestSources(sources: readonly string[], opts: DigestOptions = {}): Promise<SourcesDigest> {
    const key = memoKey(sources, opts.allowEmptyWildcard ?? true);
    const memo = this.memo;
    const remembered = memo?.memo.get(key);
    if (remembered) return this.fromMemo(remembered, sources, opts);
    const resolved = this.resolveSources(sources, opts);
    const files = new Map<string, ContextEntry>();
    for (const src of resolved) {
      for (const m of src.matches) {
        if (m.entry.type === "file") files.set(m.resolvedPath, m.entry);
        for (const c of m.contents) if (c.entry.type === "file") files.set(c.entry.path, c.entry);
      }
    }
    await this.hashContents(files, opts.signal ?? this.opts.signal);

    // entryDigestOf memoizes per path, so this needs no map of its own; `paths` is only built
    // (and sorted) if someone reads it, which the engine needs only on a cache miss.
    const digestOf = (e: ContextEntry): string => this.entryDigestOf(e);
    const out: SourceDigest[] = [];
    const all = createHash("sha256");
    all.update("kiln-sources-v1\0");
    for (const src of resolved) {
      const matches = src.matches.map((m) => ({ path: m.path, name: m.name, digest: this.matchDigest(m, digestOf) }));
      const h = createHash("sha256");
      for (const m of matches) h.update(`${m.name}\0${m.digest}\0`);
      const digest = `sha256:${h.digest("hex")}`;
      out.push({ source: src.source, path: src.path, digest, matches });
      all.update(`${src.path}\0${digest}\0`);
    }
    const cache = this.statCache;
    // Every row confirmed by this context is a file in the tree; only if there are more rows
    // than that can some be stale (a deleted or now-ignored file).
    if (cache.size > this.confirmedRows) cache.prune((p) => this.tree.get(p)?.type === "file");
    if (opts.deferCacheSave) this.cacheSavePending = true;
    else await cache.save();
    const digest = `sha256:${all.digest("hex")}`;
    if (memo && !memo.racy) memo.memo.set(key, { digest, sources: out });
    let paths: Record<string, string> | undefined;
    return {
      digest,
      sources: out,
      get paths(): Record<string, string> {
        paths ??= pathDigests(resolved, digestOf);
        return paths;
      },
    };
  }

  private cacheSavePending = false;

  /** Writes what digestSources({ deferCacheSave: true }) left unsaved. */
  async flushCaches(): Promise<void> {
    if (!this.cacheSavePending) return;
    this.cacheSavePending = false;
    await this.statCache.save();
  }

  /** A remembered answer; the per-path digests are only worked out if read (on a cache miss). */
  private fromMemo(m: MemoizedDigest, sources: readonly string[], opts: ResolveOptions): SourcesDigest {
    let paths: Record<string, string> | undefined;
    const pathsNow = (): Record<string, string> => {
      const resolved = this.resolveSources(sources, opts);
      this.hashContentsSync(resolved);
      return pathDigests(resolved, (e) => this.entryDigestOf(e));
    };
    return {
      digest: m.digest,
      sources: m.sources.map((s) => ({ ...s, matches: s.matches.map((x) => ({ ...x })) })),
      get paths(): Record<string, string> {
        paths ??= pathsNow();
        return paths;
      },
    };
  }

  /** hashContents for a synchronous caller: files the stat cache can't vouch for are read here. */
  private hashContentsSync(resolved: readonly ResolvedSource[]): void {
    const cache = this.statCache;
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    const visit = (f: ContextEntry): void => {
      if (f.type !== "file" || this.contentMemo.has(f.path)) return;
      if (f.size === 0) {
        this.contentMemo.set(f.path, EMPTY_SHA256);
        return;
      }
      const cached = cache.lookupEntry(f.path, f);
      if (cached) {
        this.contentMemo.set(f.path, cached.sha256);
        if (cached.entryDigest !== undefined) this.fileDigestMemo.set(f.path, cached.entryDigest);
        return;
      }
      this.opts.onContentRead?.(f.path);
      this.contentMemo.set(f.path, hashFileContentSync(join(this.root, f.path), buf));
    };
    for (const src of resolved) {
      for (const m of src.matches) {
        visit(m.entry);
        for (const c of m.contents) visit(c.entry);
      }
    }
  }

  /** An entry's digest: files via the stat cache or their content hash, the rest memoized by input. */
  private entryDigestOf(e: ContextEntry): string {
    if (e.type === "file") {
      let d = this.fileDigestMemo.get(e.path);
      if (d === undefined) {
        d = digestOfEntryInput(entryDigestInput(e, this.contentMemo.get(e.path)));
        this.fileDigestMemo.set(e.path, d);
      }
      return d;
    }
    const input = entryDigestInput(e, undefined);
    let d = this.metaDigestMemo.get(input);
    if (d === undefined) {
      d = digestOfEntryInput(input);
      this.metaDigestMemo.set(input, d);
    }
    return d;
  }

  private matchDigest(m: ResolvedMatch, digestOf: (e: ContextEntry) => string): string {
    if (m.entry.type !== "dir") return digestOf(m.entry);
    const tree = new TreeHasher();
    tree.add("", digestOf(m.entry));
    for (const c of m.contents) tree.add(c.relPath, digestOf(c.entry));
    return tree.digest();
  }

  /**
   * Fills contentMemo (and fileDigestMemo where the stat cache has it) for `files`, reading only
   * those the stat cache can't vouch for.
   */
  private async hashContents(files: ReadonlyMap<string, ContextEntry>, signal: AbortSignal | undefined): Promise<void> {
    const todo: ContextEntry[] = [];
    const cache = this.statCache;
    for (const f of files.values()) {
      if (this.contentMemo.has(f.path)) continue;
      if (f.size === 0) {
        this.contentMemo.set(f.path, EMPTY_SHA256);
        continue;
      }
      const cached = cache.lookupEntry(f.path, f);
      if (cached === undefined) {
        todo.push(f);
        continue;
      }
      this.contentMemo.set(f.path, cached.sha256);
      this.confirmedRows++;
      if (cached.entryDigest !== undefined) this.fileDigestMemo.set(f.path, cached.entryDigest);
      else cache.record(f.path, f, cached.sha256, Date.now(), this.entryDigestOf(f));
    }
    // Synchronous reads: through the thread pool every open/read/close of a small file is a round trip that
    // costs more than hashing it (seconds for a 13k-file context). The loop yields every ~20 ms so timers,
    // progress output and cancellation keep working.
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    let lastYield = performance.now();
    for (const f of todo) {
      signal?.throwIfAborted();
      const started = Date.now();
      this.opts.onContentRead?.(f.path);
      const sha = hashFileContentSync(join(this.root, f.path), buf);
      this.contentMemo.set(f.path, sha);
      this.confirmedRows++;
      cache.record(f.path, f, sha, started, this.entryDigestOf(f));
      if (performance.now() - lastYield > 20) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
  }
}

/** The entry digest of every resolved path that contributed, sorted by path. */
function pathDigests(resolved: readonly ResolvedSource[], digestOf: (e: ContextEntry) => string): Record<string, string> {
  const m = new Map<string, string>();
  for (const src of resolved) {
    for (const match of src.matches) {
      m.set(match.resolvedPath, digestOf(match.entry));
      for (const c of match.contents) m.set(c.entry.path, digestOf(c.entry));
    }
  }
  const out: Record<string, string> = {};
  for (const k of [...m.keys()].sort()) out[k] = m.get(k) as string;
  return out;
}

/** Which paths differ between two digests of the same sources ("which file changed"). */
export function diffSourceDigests(before: SourcesDigest, after: SourcesDigest): DigestChange {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [p, d] of Object.entries(after.paths)) {
    const old = before.paths[p];
    if (old === undefined) added.push(p);
    else if (old !== d) changed.push(p);
  }
  for (const p of Object.keys(before.paths)) if (!(p in after.paths)) removed.push(p);
  return { added, removed, changed };
}
