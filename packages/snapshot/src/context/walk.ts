// Walks a build context the way BuildKit's fsutil sends it: ignored paths are left out,
// excluded directories are only entered when an exception could re-include something
// below them, and an excluded directory is still sent when something inside it is.
//
// Each lstat is synchronous on purpose (walkContextRawAsync only pauses between them now and then so
// other I/O can progress): a warm rebuild is dominated by ~1 lstat per path, and
// lstatSync in a tight loop costs a few µs per call where the promise API (thread pool hop,
// promise, limiter) costs several times that and allocates far more (measured on a 13k-file
// context: ~40 ms vs ~300 ms). Siblings are visited in sorted order, so the depth-first result
// is already in comparePaths order and needs no global sort.
import { readdirSync, readlinkSync } from "node:fs";
import type { ContextEntry } from "./entry.js";
import { RAW_FIELDS, entryFromRaw, lstatInto, rawIsDir, rawIsSymlink } from "./fast-lstat.js";
import type { MatchInfo, MatchResult, PatternMatcher } from "./pattern-matcher.js";
import { R_CTIME, R_DEV, R_INO, R_MTIME } from "./raw-fields.js";

export interface WalkOptions {
  /** Accepted for compatibility; the walk is synchronous and makes one call at a time. */
  concurrency?: number;
  signal?: AbortSignal;
}

const NOT_MATCHED: MatchResult = { matched: false, info: [] };

/** Returns the context's visible entries (without the root), sorted with comparePaths. */
export async function walkContext(root: string, matcher: PatternMatcher, opts: WalkOptions = {}): Promise<ContextEntry[]> {
  return walkContextSync(root, matcher, opts);
}

/** walkContext without the promise: blocks while it lstats every visible path once. */
export function walkContextSync(root: string, matcher: PatternMatcher, opts: WalkOptions = {}): ContextEntry[] {
  return rawWalkEntries(walkContextRaw(root, matcher, opts));
}

/**
 * A walk kept as columns: the paths, and their lstat numbers in one Float64Array (RAW_FIELDS per
 * path). A warm rebuild only fingerprints it, so 20k entry objects are never made (they were about
 * a third of the walk's time, mostly in garbage collection); rawWalkEntries makes them when needed.
 */
export interface RawWalk {
  /** Context-relative paths in walk order (comparePaths-sorted). */
  readonly paths: readonly string[];
  /** paths.length * RAW_FIELDS numbers (the array may be longer). */
  readonly nums: Float64Array;
  /** Symlink targets, by index in `paths`. */
  readonly links: ReadonlyMap<number, string>;
  /** paths.join("\0"), when the walk was made from a string in that form (walk-snapshot.ts). */
  readonly joined?: string;
  /**
   * Every directory whose listing the walk read (the root excluded), in walk order, with the lstat numbers
   * taken just before the listing: an excluded directory that ended up empty is listed here but not in
   * `paths`. A walk snapshot trusts a listing again only while these numbers are unchanged.
   */
  readonly visitedDirs?: VisitedDirs;
}

export interface VisitedDirs {
  readonly paths: readonly string[];
  /** Where each directory was put in the walk's paths (it is not there if it was dropped again). */
  readonly indices: readonly number[];
  /** DIR_KEY_FIELDS numbers per directory: mtimeMs, ctimeMs, ino, dev. */
  readonly keys: readonly number[];
}

export const DIR_KEY_FIELDS = 4;

/** The entries of a raw walk, in its order. */
export function rawWalkEntries(raw: RawWalk): ContextEntry[] {
  const out = new Array<ContextEntry>(raw.paths.length);
  for (let i = 0; i < raw.paths.length; i++) out[i] = entryFromRaw(raw.paths[i] as string, raw.nums, i * RAW_FIELDS, raw.links.get(i));
  return out;
}

/** walkContextSync's walk, as columns. */
export function walkContextRaw(root: string, matcher: PatternMatcher, opts: WalkOptions = {}): RawWalk {
  const out = new RawWalkBuilder();
  for (const _ of walkSteps(root, matcher, opts.signal, out)) {
    // pause points only matter to the asynchronous walk
  }
  return out.result();
}

/**
 * walkContextRaw that lets the event loop run every few milliseconds, so the I/O a build has in
 * flight meanwhile (store reads, lease and lock files) proceeds during the walk instead of after it.
 * The result is the same.
 */
export async function walkContextRawAsync(root: string, matcher: PatternMatcher, opts: WalkOptions = {}): Promise<RawWalk> {
  const out = new RawWalkBuilder();
  let last = performance.now();
  for (const _ of walkSteps(root, matcher, opts.signal, out)) {
    if (performance.now() - last < PAUSE_EVERY_MS) continue;
    await new Promise<void>((resolve) => setImmediate(resolve));
    last = performance.now();
  }
  return out.result();
}

const PAUSE_EVERY_MS = 2;
/** Entries between the walk's pause points (a check of the clock). */
const STEP_ENTRIES = 256;

class RawWalkBuilder {
  readonly paths: string[] = [];
  readonly links = new Map<number, string>();
  readonly dirPaths: string[] = [];
  readonly dirIndices: number[] = [];
  readonly dirKeys: number[] = [];
  nums = new Float64Array(1024 * RAW_FIELDS);

  /** Room for one more path's numbers; returns its offset. */
  reserve(): number {
    const o = this.paths.length * RAW_FIELDS;
    if (o + RAW_FIELDS > this.nums.length) {
      const grown = new Float64Array(this.nums.length * 2);
      grown.set(this.nums);
      this.nums = grown;
    }
    return o;
  }

  result(): RawWalk {
    return { paths: this.paths, nums: this.nums, links: this.links, visitedDirs: { paths: this.dirPaths, indices: this.dirIndices, keys: this.dirKeys } };
  }
}

/** The walk itself; yields now and then so an asynchronous driver can pause it. */
function* walkSteps(root: string, matcher: PatternMatcher, signal: AbortSignal | undefined, out: RawWalkBuilder): Generator<void, void, void> {
  const filtering = !matcher.isEmpty;
  const { paths, links } = out;
  let sinceStep = 0;

  /** Stats `abs` into the slot at `o`; false if it vanished. */
  const statInto = (abs: string, o: number): boolean => {
    try {
      return lstatInto(abs, root, out.nums, o);
    } catch (e) {
      if (isVanished(e)) return false;
      throw e;
    }
  };

  function* visitDir(relDir: string, absDir: string, parentInfo: MatchInfo, excluded: boolean): Generator<void, void, void> {
    signal?.throwIfAborted();
    const names = readDir(absDir, excluded);
    if (!names) return;
    names.sort(); // UTF-16 order, which makes the depth-first output comparePaths-sorted
    const prefix = relDir === "" ? "" : `${relDir}/`;
    const absPrefix = absDir.endsWith("/") ? absDir : `${absDir}/`;
    for (const name of names) {
      if (++sinceStep >= STEP_ENTRIES) {
        sinceStep = 0;
        yield;
        signal?.throwIfAborted();
      }
      const rel = prefix + name;
      const r = filtering ? matcher.matchesUsingParentResults(rel, parentInfo) : NOT_MATCHED;
      // An excluded path is skipped unless it is a directory an exception may reach into.
      if (r.matched && matcher.canPruneExcludedDir(rel)) continue;
      const abs = absPrefix + name;
      const at = paths.length;
      const o = out.reserve();
      if (!statInto(abs, o)) continue; // removed while walking
      const nums = out.nums;
      const isDir = rawIsDir(nums, o);
      if (r.matched && !isDir) continue;
      if (rawIsSymlink(nums, o)) {
        try {
          links.set(at, readlinkSync(abs));
        } catch (e) {
          if (isVanished(e)) continue;
          throw e;
        }
      }
      // An excluded directory goes in provisionally and is dropped again if nothing below it is sent.
      paths.push(rel);
      if (isDir) {
        out.dirPaths.push(rel);
        out.dirIndices.push(at);
        out.dirKeys.push(nums[o + R_MTIME] as number, nums[o + R_CTIME] as number, nums[o + R_INO] as number, nums[o + R_DEV] as number);
        yield* visitDir(rel, abs, r.info, r.matched);
      }
      if (r.matched && paths.length === at + 1) paths.pop();
    }
  }

  yield* visitDir("", root, [], false);
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
