// A walked, filtered build context: the set of paths BuildKit would transfer, plus COPY
// source resolution and content digests for cache keys.
import { createHash } from "node:crypto";
import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { type ContextEntry, entryFromStats } from "./entry.js";
import { BuildContextError } from "./errors.js";
import { goClean } from "./go-path.js";
import { DigestMemo, type MemoizedDigest, memoKey, treeFingerprint } from "./digest-memo.js";
import { loadIgnoreFile } from "./ignore-file.js";
import { PatternMatcher } from "./pattern-matcher.js";
import { PathDigests } from "./path-digests.js";
import { type ResolveOptions, type ResolvedSource, type StreamedSource, type WalkSource, materializeSource, resolveInWalk, streamSource } from "./resolve.js";
import { DEFAULT_RACY_WINDOW_MS, StatCache } from "./stat-cache.js";
import { type RawWalk, walkContextRawAsync } from "./walk.js";
import { WalkDigests } from "./walk-digests.js";
import { WalkIndex } from "./walk-index.js";
import { loadWalkSnapshot, saveWalkSnapshot } from "./walk-snapshot.js";
import { helperThread } from "../util/helper-thread.js";

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
  /** Entry digest of every context path that contributed, keyed by resolved path ("" = root), sorted by path. */
  paths: Record<string, string>;
  /**
   * `paths[path]` without building `paths`: cheap for each path of a large COPY (O(1) when asked in
   * walk order). `path` is a clean context-relative path ("" = root).
   */
  pathDigest(path: string): string | undefined;
  /** `paths` as canonical JSON text (sorted keys), made without the record. */
  pathsJson(): string;
}

export interface DigestOptions extends ResolveOptions {
  signal?: AbortSignal;
  /**
   * Leave the stat cache's write for flushCaches() instead of doing it here: a build saves it while other work
   * waits (it only speeds up the next build; a crash before the flush just means rehashing then).
   */
  deferCacheSave?: boolean;
  /**
   * Awaited when the files the stat cache could not vouch for have been read (contentReads() lists them),
   * before the tree digests: a build starts work that needs only those (a diffID speculation) this early.
   * Not called when the digest memo answers.
   */
  afterReads?: () => Promise<void> | void;
}

export interface DigestChange {
  added: string[];
  removed: string[];
  changed: string[];
}

export class BuildContext {
  private statCacheValue: StatCache | undefined;
  private memoValue: { memo: DigestMemo; racy: boolean } | null | undefined;
  private walkIndexValue: WalkIndex | undefined;
  private digestsValue: WalkDigests | undefined;
  /** Resolutions by memo key (sources are usually resolved twice: to digest, then to copy). */
  private readonly resolved = new Map<string, WalkSource[]>();
  private cacheSavePending = false;
  private readonly contentReadPaths: string[] = [];
  /** The walk was a full one and its snapshot (walk-snapshot.ts) is still to be written by flushCaches(). */
  private walkSnapshotPending: boolean;

  private constructor(
    /** Absolute, symlink-free path of the context directory. */
    readonly root: string,
    /** The ignore patterns in effect (already parsed). */
    readonly ignorePatterns: readonly string[],
    /** The ignore file that was read, if any. */
    readonly dockerignorePath: string | undefined,
    private readonly matcher: PatternMatcher,
    private readonly rootEntry: ContextEntry,
    /** The walk as columns; entry objects are made only for paths something asks about. */
    private readonly walk: RawWalk,
    private readonly opts: OpenContextOptions,
    /** Date.now() just before the walk began (memos of entries changed close to it are not kept). */
    private readonly walkStartedMs: number,
    fullWalk: boolean,
  ) {
    this.walkSnapshotPending = fullWalk && opts.statCacheFile !== undefined;
  }

  private get index(): WalkIndex {
    this.walkIndexValue ??= new WalkIndex(this.rootEntry, this.walk);
    return this.walkIndexValue;
  }

  private get digests(): WalkDigests {
    this.digestsValue ??= new WalkDigests(this.index, this.root, () => this.statCache, (path) => {
      this.contentReadPaths.push(path);
      this.opts.onContentRead?.(path);
    });
    return this.digestsValue;
  }

  /** The digest memo for this walk (undefined without a stat cache file); loaded on first use. */
  private get memo(): { memo: DigestMemo; racy: boolean } | undefined {
    if (this.memoValue === undefined) {
      const file = this.opts.statCacheFile;
      if (!file) this.memoValue = null;
      else {
        const fp = treeFingerprint(this.root, this.rootEntry, this.walk, this.index.joinedPaths);
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
    // Started now so it has booted by the time it can help: half of a snapshot walk's lstats, and the
    // diffID hashing of a large COPY layer.
    const helper = opts.statCacheFile ? helperThread() : undefined;
    let root: string;
    let rootEntry: ContextEntry;
    try {
      // Synchronous: two calls on the way to the walk (the promise API's thread-pool round trips cost more).
      root = realpathSync.native(resolve(dir));
      const st = statSync(root);
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
    const snapshot = opts.statCacheFile ? await loadWalkSnapshot(`${opts.statCacheFile}.walk`, root, rootEntry, patterns, helper, opts.signal) : undefined;
    const walk = snapshot ?? (await walkContextRawAsync(root, matcher, { signal: opts.signal }));
    return new BuildContext(root, patterns, ignorePath, matcher, rootEntry, walk, opts, walkStartedMs, snapshot === undefined);
  }

  /**
   * Context paths whose content this context read to digest them (the stat cache could not vouch for them):
   * after an edit, the files that changed (plus any touched without a change, or new to the cache).
   */
  contentReads(): readonly string[] {
    return this.contentReadPaths;
  }

  /** The newest mtime of `path` ("" = root) and everything sent below it; undefined if it is not in the walk. */
  newestMtimeMs(path: string): number | undefined {
    const i = this.index.indexOf(goClean(`/${path}`).slice(1));
    if (i === undefined) return undefined;
    return this.index.newestMtimeMs(i);
  }

  /** Every transferred path (root excluded) in tree order. */
  entries(): readonly ContextEntry[] {
    return this.index.entries();
  }

  /** The entry at a context-relative path ("" = root), undefined if absent or ignored. */
  get(path: string): ContextEntry | undefined {
    const p = goClean(`/${path}`).slice(1);
    const i = this.index.indexOf(p);
    return i === undefined ? undefined : this.index.entry(i);
  }

  /** Does the ignore file exclude `path` (relative to the context)? */
  isIgnored(path: string): boolean {
    const p = goClean(path);
    if (p === "." || p === "/") return false;
    return this.matcher.matchesOrParentMatches(p);
  }

  resolveSources(sources: readonly string[], opts?: ResolveOptions): ResolvedSource[] {
    return this.resolveInWalk(sources, opts).map((s) => materializeSource(this.index, s));
  }

  /** resolveSources whose directory contents are made as they are iterated (for one pass over a large COPY). */
  streamSources(sources: readonly string[], opts?: ResolveOptions): StreamedSource[] {
    return this.resolveInWalk(sources, opts).map((s) => streamSource(this.index, s));
  }

  private resolveInWalk(sources: readonly string[], opts: ResolveOptions = {}): WalkSource[] {
    const key = memoKey(sources, opts.allowEmptyWildcard ?? true);
    let r = this.resolved.get(key);
    if (!r) {
      r = resolveInWalk(this.index, sources, opts);
      this.resolved.set(key, r);
    }
    return r;
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
    const resolved = this.resolveInWalk(sources, opts);
    const digests = this.digests;
    await readFiles(digests, digests.pending(resolved), opts.signal ?? this.opts.signal);
    await opts.afterReads?.();

    const out: SourceDigest[] = [];
    const all = createHash("sha256");
    all.update("kiln-sources-v1\0");
    for (const src of resolved) {
      const matches = src.matches.map((m) => ({ path: m.path, name: m.name, digest: digests.matchDigest(m) }));
      const h = createHash("sha256");
      for (const m of matches) h.update(`${m.name}\0${m.digest}\0`);
      const digest = `sha256:${h.digest("hex")}`;
      out.push({ source: src.source, path: src.path, digest, matches });
      all.update(`${src.path}\0${digest}\0`);
    }
    if (opts.deferCacheSave) this.cacheSavePending = true;
    else await this.statCache.save();
    const digest = `sha256:${all.digest("hex")}`;
    if (memo && !memo.racy) memo.memo.set(key, { digest, sources: out });
    const paths = new PathDigests(this.index, resolved, digests.digests, (k) => digests.digestOf(k));
    return sourcesDigest(digest, out, () => paths);
  }

  /** Writes what digestSources({ deferCacheSave: true }) left unsaved. */
  async flushCaches(): Promise<void> {
    if (this.walkSnapshotPending) {
      this.walkSnapshotPending = false;
      const file = this.opts.statCacheFile;
      if (file) saveWalkSnapshot(`${file}.walk`, this.root, this.rootEntry, this.ignorePatterns, this.walk, this.walkStartedMs, this.opts.racyWindowMs ?? DEFAULT_RACY_WINDOW_MS);
    }
    if (!this.cacheSavePending) return;
    this.cacheSavePending = false;
    await this.statCache.save({ deferSmall: true });
  }

  /** A remembered answer; the per-path digests are only worked out if read (on a cache miss). */
  private fromMemo(m: MemoizedDigest, sources: readonly string[], opts: ResolveOptions): SourcesDigest {
    let paths: PathDigests | undefined;
    const pathsNow = (): PathDigests => {
      if (!paths) {
        const resolved = this.resolveInWalk(sources, opts);
        const digests = this.digests;
        // A synchronous caller: files the stat cache can't vouch for are read here.
        for (const k of digests.pending(resolved)) digests.readFile(k);
        paths = new PathDigests(this.index, resolved, digests.digests, (k) => digests.digestOf(k));
      }
      return paths;
    };
    const copied = m.sources.map((s) => ({ ...s, matches: s.matches.map((x) => ({ ...x })) }));
    return sourcesDigest(m.digest, copied, pathsNow);
  }
}

/** A SourcesDigest whose per-path digests come from `paths()` when first read. */
function sourcesDigest(digest: string, sources: SourceDigest[], paths: () => PathDigests): SourcesDigest {
  const out = {
    digest,
    sources,
    get paths(): Record<string, string> {
      return paths().record();
    },
  };
  // Not enumerable: the answer stays plain data (JSON, deep equality) as it was before the accessor existed.
  Object.defineProperty(out, "pathDigest", { value: (path: string) => paths().get(path), enumerable: false });
  Object.defineProperty(out, "pathsJson", { value: () => paths().json(), enumerable: false });
  return out as SourcesDigest;
}

/**
 * Reads the files `pending` returned. Synchronous reads: through the thread pool every open/read/close of
 * a small file is a round trip that costs more than hashing it (seconds for a 13k-file context). The loop
 * yields every ~20 ms so timers, progress output and cancellation keep working.
 */
async function readFiles(digests: WalkDigests, todo: readonly number[], signal: AbortSignal | undefined): Promise<void> {
  let lastYield = performance.now();
  for (const k of todo) {
    signal?.throwIfAborted();
    digests.readFile(k);
    if (performance.now() - lastYield > 20) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
  }
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
