/**
 * A layer tar written as a sequence of "parts": runs of the tar's bytes, each stored as its own blob, whose
 * concatenation is exactly `writeLayerTar`'s output (so the layer can be recorded as a composite blob with
 * digest = diffID). After a one-file change only the part holding that file is new; every other part is
 * recognised by its recipe — the header bytes and content fingerprints it is made of — without reading the
 * source files again. The diffID still covers every byte: reused parts are read back from the store (one
 * sequential read each) and hashed.
 *
 * Part boundaries are planned from the headers and sizes alone (no content needed), and depend only on each
 * entry's own path and size plus a min/max guard, so an edited, added or removed file moves at most the
 * boundaries next to it:
 *  - after a small entry of tar weight w, cut when hash(path) < w / partBytes (as a fraction of 2^32) and the
 *    part holds ≥ partBytes/8, or unconditionally once it holds ≥ 4 × partBytes;
 *  - a file larger than partBytes gets parts of its own: cut before its header, at every partBytes of its
 *    content (so an unchanged tail still lines up) and after its padding;
 *  - the end-of-archive blocks close the last part.
 */
import * as crypto from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { LayerEntryError, LayerError } from "./errors.js";
import { BLOCK, ZERO_BLOCK, paddingFor } from "./tar-format.js";
import { inlineDiffHasher, workerDiffHasher, type DiffHasher } from "./diff-hasher.js";
import { encodeEntryHeader, entryHeaderIdentity, entryHeaderLength, prepareEntries } from "./tar-writer.js";
import type { Digest, LayerEntry } from "./types.js";

export interface TarPartEntry extends LayerEntry {
  /** Content identity from the caller (e.g. the build context's per-file digest); enables reuse by recipe. */
  fingerprint?: string;
}

export interface TarPartRef {
  digest: Digest;
  size: number;
  /** What the part is made of (headers + content fingerprints); absent when some content had no fingerprint. */
  recipe?: string;
  /** Layer path of the entry whose header starts the part (absent when it starts inside a big file's content). */
  first?: string;
}

export const TAR_PARTS_INDEX_VERSION = 1;

/** Persisted next to a parts layer so the next build of the same step can reuse its parts. */
export interface TarPartsIndex {
  version: typeof TAR_PARTS_INDEX_VERSION;
  partBytes: number;
  diffID: Digest;
  size: number;
  parts: TarPartRef[];
}

/** Where parts go: a content-addressed store (the engine passes its blob store). */
export interface TarPartSink {
  has(digest: Digest): boolean | Promise<boolean>;
  /** Stores a new part; `digest` is the sha256 of `data`. */
  write(data: Buffer, digest: Digest, signal?: AbortSignal): Promise<void>;
  /**
   * A stored part's bytes (only called for parts that `has` reported), read into `into` (at least `size`
   * bytes; the returned buffer may be a view of it, valid until the next call).
   */
  read(digest: Digest, size: number, into: Buffer): Buffer | Promise<Buffer>;
  /**
   * A file holding a part's bytes now (stored, or written by this write), readable until the write returns.
   * Lets the diffID be hashed on another thread; without it, parts are hashed on this one.
   */
  readPath?(digest: Digest): string;
}

export interface WriteTarPartsOptions {
  /**
   * Called once all parts are planned and produced, before waiting for the diffID: the caller's chance to do
   * work of its own while the hash finishes (on the worker thread). Its result and errors are not awaited.
   */
  whileHashing?: () => unknown;
  /**
   * Where the diffID is hashed: "worker" (another thread reads and hashes the parts while this one plans and
   * produces them; needs sink.readPath), "inline", or "auto" (default: a worker for layers of 32 MiB or more).
   */
  hashing?: "auto" | "inline" | "worker";
  /** Target bytes per part (default 1 MiB, at least 64 KiB). */
  partBytes?: number;
  previous?: TarPartsIndex;
  /**
   * A guess at the part list whose hashing started before planning (part-speculation.ts). When the planned
   * parts turn out to be exactly these, its digest is the diffID; otherwise it is cancelled and the planned
   * parts are hashed. Either way the diffID is the sha256 of the parts written.
   */
  speculation?: SpeculativeDiffID;
  /**
   * Called once the parts are written and the speculation (if any) is settled, while the diffID is still
   * being hashed; awaited with it. `partsReadable` is false while the hashing still reads new parts from the
   * sink's readPath (whatever moves them, such as committing a batch, must wait for the diffID then).
   */
  beforeDigest?: (parts: readonly TarPartRef[], partsReadable: boolean) => Promise<void>;
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** A diffID being hashed from predicted parts (see WriteTarPartsOptions.speculation). */
export interface SpeculativeDiffID {
  readonly parts: readonly { digest: Digest; size: number }[];
  digest(): Promise<Digest>;
  /** Stops the hashing (safe after digest()). */
  cancel(): void;
}

export interface TarPartsStats {
  parts: number;
  /** Parts taken from the previous build by recipe (their sources were not read). */
  reusedParts: number;
  /** Parts produced from the sources whose bytes were already in the store. */
  knownParts: number;
  /** Parts produced and written now. */
  writtenParts: number;
  /** Source content bytes read by this write. */
  sourceBytesRead: number;
  /** Whether options.speculation was given and matched the planned parts (its digest became the diffID). */
  speculationUsed?: boolean;
}

export interface TarPartsResult {
  diffID: Digest;
  size: number;
  parts: TarPartRef[];
  stats: TarPartsStats;
}

export const DEFAULT_PART_BYTES = 1 << 20;
const MIN_PART_BYTES = 64 << 10;
const RECIPE_VERSION = "kiln-tar-part-v2";
const TRAILER = Buffer.alloc(2 * BLOCK);
/** Below this much content a worker's start-up costs more than hashing on this thread. */
const WORKER_HASH_MIN_BYTES = 32 << 20;

type Segment =
  | { kind: "bytes"; data: Buffer }
  | { kind: "header"; entry: TarPartEntry; length: number }
  | { kind: "content"; entry: TarPartEntry; offset: number; length: number; last: boolean };

interface PlannedPart {
  /** Path of the entry whose header starts the part, if one does. */
  first: string | undefined;
  segments: Segment[];
  length: number;
  /** Header identities, padding/trailer lengths and content descriptors, hashed once per part. */
  recipeText: string;
  reusable: boolean;
}

function recipeOf(part: PlannedPart): string | undefined {
  if (!part.reusable) return undefined;
  return sha256Hex(`${RECIPE_VERSION}\0${part.recipeText}`);
}

const sha256Hex: (data: string | Buffer) => string =
  typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data) : (data) => crypto.createHash("sha256").update(data).digest("hex");

/** A uniform value in [0, 1) derived from the path alone (FNV-1a over its UTF-16 code units, then mixed). */
function cutPoint(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 2 ** 32;
}

/** Plans the parts of the layer tar from entry metadata only. */
function* planParts(prepared: TarPartEntry[], partBytes: number, sourceDateEpoch: number | undefined): Generator<PlannedPart> {
  const minBytes = Math.floor(partBytes / 8);
  const maxBytes = partBytes * 4;
  const parts: PlannedPart[] = [];
  const fresh = (): PlannedPart => ({ first: undefined, segments: [], length: 0, recipeText: "", reusable: true });
  let cur = fresh();
  const cut = (): void => {
    if (cur.length === 0) return;
    parts.push(cur);
    cur = fresh();
  };
  /** Zero bytes only (padding, trailer): their length is their identity. */
  const addBytes = (data: Buffer): void => {
    if (data.length === 0) return;
    cur.segments.push({ kind: "bytes", data });
    cur.length += data.length;
    cur.recipeText += `Z${data.length}\0`;
  };
  // Headers are encoded only for parts that get produced; the identity stands for their bytes in the recipe.
  const addHeader = (entry: TarPartEntry, length: number): void => {
    if (cur.length === 0) cur.first = entry.path;
    cur.segments.push({ kind: "header", entry, length });
    cur.length += length;
    cur.recipeText += `H${length}\0${entryHeaderIdentity(entry, sourceDateEpoch)}\0`;
  };
  const addContent = (entry: TarPartEntry, offset: number, length: number, last: boolean): void => {
    cur.segments.push({ kind: "content", entry, offset, length, last });
    cur.length += length;
    if (entry.fingerprint === undefined) cur.reusable = false;
    else cur.recipeText += `C${entry.fingerprint}\0${offset}\0${length}\0`;
  };

  for (const entry of prepared) {
    // Parts are handed out as soon as they are cut, so their hashing overlaps the rest of the planning.
    if (parts.length > 0) {
      yield* parts;
      parts.length = 0;
    }
    const headerLength = entryHeaderLength(entry, sourceDateEpoch);
    const size = entry.type === "file" ? entry.size! : 0;
    const pad = paddingFor(size);
    const big = size > partBytes;
    if (big) cut();
    addHeader(entry, headerLength);
    if (big) {
      for (let offset = 0; offset < size; offset += partBytes) {
        const length = Math.min(partBytes, size - offset);
        addContent(entry, offset, length, offset + length === size);
        if (offset + length < size) cut();
      }
      addBytes(ZERO_BLOCK.subarray(0, pad));
      cut();
      continue;
    }
    if (size > 0) addContent(entry, 0, size, true);
    addBytes(ZERO_BLOCK.subarray(0, pad));
    if (cur.length >= maxBytes) cut();
    else if (cur.length >= minBytes && cutPoint(entry.path) < (headerLength + size + pad) / partBytes) cut();
  }
  addBytes(TRAILER);
  cut();
  yield* parts;
}

/** A hasher that is never fed (the speculation's stands in for it). */
const NO_HASHER: DiffHasher = {
  addFile() {},
  addBytes() {},
  digest: () => Promise.reject(new LayerError("internal: no hasher")),
  close() {},
};

function withFirst(ref: TarPartRef, part: PlannedPart): TarPartRef {
  return part.first === undefined ? ref : { ...ref, first: part.first };
}

function sameParts(a: readonly { digest: Digest; size: number }[], b: readonly TarPartRef[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.digest !== b[i]!.digest || a[i]!.size !== b[i]!.size) return false;
  return true;
}

/** Reads one entry's content in order, across the parts it spans. */
class ContentReader {
  #entry: TarPartEntry | undefined;
  #fd: number | undefined;
  #stream: AsyncIterator<Buffer | string> | undefined;
  #destroy: (() => void) | undefined;
  #pending: Buffer | undefined;
  #pos = 0;
  bytesRead = 0;

  /** Fills `out[at, at+length)` with the entry's content bytes [offset, offset+length). */
  async read(entry: TarPartEntry, offset: number, length: number, last: boolean, out: Buffer, at: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#entry !== entry) {
      this.close();
      this.#entry = entry;
      this.#pos = 0;
      if (entry.sourcePath !== undefined) this.#fd = openSync(entry.sourcePath, "r");
      else if (entry.open) {
        const src = entry.open();
        this.#stream = (src as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
        this.#destroy = () => (src as { destroy?: () => void }).destroy?.();
      } else throw new LayerEntryError(entry.path, "file with content needs open()");
    }
    if (offset !== this.#pos) throw new LayerError(`internal: content of ${entry.path} read out of order`);
    let filled = 0;
    if (this.#fd !== undefined) {
      while (filled < length) {
        const n = readSync(this.#fd, out, at + filled, length - filled, null);
        if (n === 0) break;
        filled += n;
      }
      if (filled === length && last && readSync(this.#fd, Buffer.allocUnsafe(1), 0, 1, null) > 0) {
        throw new LayerEntryError(entry.path, `content is longer than the declared size ${entry.size}`);
      }
    } else {
      while (filled < length) {
        signal?.throwIfAborted();
        let chunk = this.#pending;
        this.#pending = undefined;
        if (!chunk) {
          const next = await this.#stream!.next();
          if (next.done) break;
          chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
        }
        const take = Math.min(chunk.length, length - filled);
        chunk.copy(out, at + filled, 0, take);
        filled += take;
        if (take < chunk.length) this.#pending = chunk.subarray(take);
      }
      if (filled === length && last) {
        let extra = this.#pending?.length ?? 0;
        while (extra === 0) {
          const next = await this.#stream!.next();
          if (next.done) break;
          extra = next.value.length;
        }
        if (extra > 0) throw new LayerEntryError(entry.path, `content is longer than the declared size ${entry.size}`);
      }
    }
    if (filled !== length) {
      throw new LayerEntryError(entry.path, `content has ${this.#pos + filled} bytes but the declared size is ${entry.size}`);
    }
    this.#pos += length;
    this.bytesRead += length;
    if (last) this.close();
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#destroy?.();
    this.#fd = undefined;
    this.#stream = undefined;
    this.#destroy = undefined;
    this.#pending = undefined;
    this.#entry = undefined;
  }
}

/**
 * Writes the layer tar of `entries` as parts into `sink` and returns the diffID, the total size and the part
 * list (in order). Memory stays bounded by one part (≤ 4 × partBytes, or partBytes plus a header for a big file).
 */
export async function writeTarParts(
  entries: Iterable<TarPartEntry> | AsyncIterable<TarPartEntry>,
  sink: TarPartSink,
  options: WriteTarPartsOptions = {},
): Promise<TarPartsResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const partBytes = Math.max(MIN_PART_BYTES, Math.floor(options.partBytes ?? DEFAULT_PART_BYTES));
  const list: TarPartEntry[] = [];
  if (Symbol.iterator in entries) for (const e of entries) list.push(e);
  else for await (const e of entries) list.push(e);
  let estimate = 0;
  for (const e of list) if (e.type === "file") estimate += e.size ?? 0;
  const readPath = sink.readPath?.bind(sink);
  const useWorker = readPath !== undefined && (options.hashing === "worker" || ((options.hashing ?? "auto") === "auto" && estimate >= WORKER_HASH_MIN_BYTES));
  const speculation = options.speculation;
  // With a speculation the parts are hashed only if it turns out wrong (after planning, below).
  let hasher: DiffHasher = speculation ? NO_HASHER : useWorker ? workerDiffHasher() : inlineDiffHasher();
  let prepared: TarPartEntry[];
  try {
    prepared = (await prepareEntries(list)) as TarPartEntry[];
  } catch (err) {
    hasher.close();
    throw err;
  }

  const previous = new Map<string, TarPartRef>();
  if (options.previous && options.previous.version === TAR_PARTS_INDEX_VERSION && options.previous.partBytes === partBytes) {
    for (const p of options.previous.parts) if (p.recipe !== undefined) previous.set(p.recipe, p);
  }

  const reader = new ContentReader();
  const stats: TarPartsStats = { parts: 0, reusedParts: 0, knownParts: 0, writtenParts: 0, sourceBytesRead: 0 };
  const out: TarPartRef[] = [];
  let size = 0;
  // One buffer for every part (reads of reused parts and assembly of new ones), grown when a part needs more.
  let scratch = Buffer.allocUnsafe(Math.min(4 * partBytes + 2 * BLOCK, Math.max(estimate + 4 * BLOCK, BLOCK)));
  let diffID: Digest;
  try {
    for (const part of planParts(prepared, partBytes, options.sourceDateEpoch)) {
      signal?.throwIfAborted();
      stats.parts++;
      if (scratch.length < part.length) scratch = Buffer.allocUnsafe(part.length);
      const recipe = recipeOf(part);
      const prev = recipe !== undefined ? previous.get(recipe) : undefined;
      if (prev && prev.size === part.length && (await sink.has(prev.digest))) {
        if (speculation) {
          // hashed by the speculation (or after planning, if it is wrong)
        } else if (useWorker) {
          // The worker reads the stored part itself (into one reused buffer: no page faults on fresh memory).
          hasher.addFile(readPath!(prev.digest), prev.size);
        } else {
          const data = await sink.read(prev.digest, prev.size, scratch);
          if (data.length !== prev.size) throw new LayerError(`stored part ${prev.digest} is ${data.length} bytes, not ${prev.size}`);
          hasher.addBytes(data);
        }
        out.push(withFirst({ digest: prev.digest, size: prev.size, recipe: recipe! }, part));
        size += prev.size;
        stats.reusedParts++;
        continue;
      }
      const data = scratch.subarray(0, part.length);
      let at = 0;
      for (const seg of part.segments) {
        if (seg.kind === "bytes") {
          seg.data.copy(data, at);
          at += seg.data.length;
        } else if (seg.kind === "header") {
          const header = encodeEntryHeader(seg.entry, options.sourceDateEpoch);
          if (header.length !== seg.length) throw new LayerError(`internal: header length of ${seg.entry.path} changed`);
          header.copy(data, at);
          at += header.length;
        } else {
          await reader.read(seg.entry, seg.offset, seg.length, seg.last, data, at, signal);
          at += seg.length;
        }
      }
      const digest: Digest = `sha256:${sha256Hex(data)}`;
      if (await sink.has(digest)) stats.knownParts++;
      else {
        await sink.write(data, digest, signal);
        stats.writtenParts++;
      }
      if (useWorker) hasher.addFile(readPath!(digest), part.length);
      else hasher.addBytes(data);
      out.push(withFirst(recipe !== undefined ? { digest, size: part.length, recipe } : { digest, size: part.length }, part));
      size += part.length;
    }
    if (speculation) {
      if (sameParts(speculation.parts, out)) stats.speculationUsed = true;
      else {
        // Wrong guess: stop it and hash what was written.
        speculation.cancel();
        stats.speculationUsed = false;
        hasher = useWorker ? workerDiffHasher() : inlineDiffHasher();
        for (const p of out) {
          if (useWorker) hasher.addFile(readPath!(p.digest), p.size);
          else {
            const data = await sink.read(p.digest, p.size, scratch.length >= p.size ? scratch : (scratch = Buffer.allocUnsafe(p.size)));
            if (data.length !== p.size) throw new LayerError(`stored part ${p.digest} is ${data.length} bytes, not ${p.size}`);
            hasher.addBytes(data);
          }
        }
      }
    }
    if (options.whileHashing) Promise.resolve().then(options.whileHashing).catch(() => undefined);
    // With a right guess (or inline hashing) no new part is read again by the hasher.
    const before = options.beforeDigest?.(out, stats.speculationUsed === true || !useWorker);
    before?.catch(() => undefined); // awaited below, after the digest: not an unhandled rejection meanwhile
    diffID = speculation && stats.speculationUsed ? await speculation.digest() : await hasher.digest();
    await before;
  } finally {
    reader.close();
    hasher.close();
    speculation?.cancel();
  }
  stats.sourceBytesRead = reader.bytesRead;
  return { diffID, size, parts: out, stats };
}

export function serializeTarPartsIndex(index: TarPartsIndex): string {
  return JSON.stringify(index);
}

/** Parses a persisted index; anything malformed is undefined (the next write just reuses nothing). */
export function parseTarPartsIndex(text: string): TarPartsIndex | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const idx = raw as Partial<TarPartsIndex> | null;
  if (!idx || idx.version !== TAR_PARTS_INDEX_VERSION || !Array.isArray(idx.parts) || typeof idx.partBytes !== "number") return undefined;
  const isDigest = (v: unknown): v is Digest => typeof v === "string" && /^sha256:[0-9a-f]{64}$/.test(v);
  let total = 0;
  for (const p of idx.parts) {
    if (!p || !isDigest(p.digest) || !Number.isSafeInteger(p.size) || p.size < 0 || (p.recipe !== undefined && typeof p.recipe !== "string")) return undefined;
    if (p.first !== undefined && typeof p.first !== "string") return undefined;
    total += p.size;
  }
  if (!isDigest(idx.diffID) || idx.size !== total) return undefined;
  return idx as TarPartsIndex;
}
