// Gzip forms of uncompressed store blobs, made when an output or a push needs them and remembered.
//
// A blob is deflated as a series of independent gzip members (RFC 1952 §2.2: a gzip file is a sequence of
// members; Go, containerd, Docker, skopeo, umoci and Node's zlib all read them as one stream), which lets
// the members be deflated in parallel and — for a composite blob — one member per part, so after a
// one-file change only the changed part is deflated again. Node's gzip writes a fixed header (MTIME 0, OS
// 3), so a member's bytes depend only on its input, the level and the zlib build: identical inputs give
// identical digests on every machine with the same zlib.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { digestHex, isDigest, writeFileAtomic, type BlobStore, type CompositePart } from "@kiln/cache";
import type { CompressPool } from "@kiln/snapshot";
import type { Digest } from "../image/oci.js";

/** Uncompressed bytes per gzip member of a regular blob: big enough to compress well, small enough to bound memory. */
export const GZIP_RUN_BYTES = 1 << 20;
const RECORDS_DIR = "compressed";

/** Counters a caller (or a test) can read to see what was reused and what was deflated. */
export interface CompressionStats {
  /** Layers converted (or found converted) for this image. */
  layers: number;
  /** Layers whose whole gzip form was found in the conversion cache. */
  layersReused: number;
  /** Blobs (regular layers or composite parts) deflated now. */
  blobsDeflated: number;
  /** Composite parts whose gzip member blob was found in the conversion cache. */
  partsReused: number;
  /** gzip members written (≈ 1 MiB of input each). */
  membersDeflated: number;
  /** Uncompressed bytes deflated now. */
  bytesIn: number;
}

export function emptyCompressionStats(): CompressionStats {
  return { layers: 0, layersReused: 0, blobsDeflated: 0, partsReused: 0, membersDeflated: 0, bytesIn: 0 };
}

export interface GzipContext {
  store: BlobStore;
  /** A converted blob not in the store may still be usable (e.g. fetchable from an imported cache). */
  isAvailable?: (digest: Digest) => Promise<boolean>;
  pool: CompressPool;
  /** Parallel deflates (the pool's limit); also how far ahead of the writer a single stream deflates. */
  workers: number;
  stats: CompressionStats;
  signal?: AbortSignal;
}

export interface ConversionRecord {
  digest: Digest;
  size: number;
}

/** `<root>/compressed/<hex>.gzip-<level>.zlib-<version>.json`: the key names every input of the bytes. */
function recordPath(store: BlobStore, digest: Digest, level: number): string {
  return path.join(store.dir(RECORDS_DIR), `${digestHex(digest)}.gzip-${level}.zlib-${process.versions.zlib ?? "unknown"}.json`);
}

/**
 * The remembered gzip form of `digest`, if the record exists and its blob is still in the store (or, with
 * `isAvailable`, can still be fetched).
 */
export async function cachedGzip(store: BlobStore, digest: Digest, level: number, isAvailable?: (digest: Digest) => Promise<boolean>): Promise<ConversionRecord | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(recordPath(store, digest, level), "utf8"));
  } catch {
    return undefined; // absent or unreadable: the record is only a cache, so convert again
  }
  const r = raw as Partial<ConversionRecord> | null;
  if (!r || !isDigest(r.digest) || !Number.isSafeInteger(r.size)) return undefined;
  const st = await store.stat(r.digest);
  if (st) return st.size === r.size && (await partsPresent(store, r.digest)) ? { digest: r.digest, size: st.size } : undefined;
  return isAvailable && (await isAvailable(r.digest)) ? { digest: r.digest, size: r.size as number } : undefined;
}

/** A composite whose parts GC took is no longer readable; a regular blob is whole. */
async function partsPresent(store: BlobStore, digest: Digest): Promise<boolean> {
  const c = await store.readComposite(digest);
  if (!c) return true;
  for (const p of c.parts) if (store.filePath(p.digest) === undefined) return false;
  return true;
}

/** Records `result` as the gzip form of `digest` at `level` (also for forms made elsewhere, e.g. an imported cache's). */
export async function rememberGzip(store: BlobStore, digest: Digest, level: number, result: ConversionRecord): Promise<void> {
  await store.ensureDir(RECORDS_DIR);
  // Not fsynced: a record lost in a crash costs one more deflate, and a record is only trusted if its blob exists.
  await writeFileAtomic(recordPath(store, digest, level), JSON.stringify({ digest: result.digest, size: result.size }), {
    tmpDir: store.dir("tmp"),
    durable: false,
  });
}

/**
 * Makes (and remembers) the gzip form of the uncompressed blob `digest`, regular or composite; callers look
 * in the conversion cache first. A composite's gzip form is itself a composite of one gzip blob per part.
 */
export async function gzipBlob(ctx: GzipContext, digest: Digest): Promise<ConversionRecord> {
  const composite = await ctx.store.readComposite(digest);
  const result = composite ? await gzipComposite(ctx, composite.parts) : await deflateRegular(ctx, digest, ctx.workers + 1);
  await rememberGzip(ctx.store, digest, ctx.pool.level, result);
  return result;
}

async function gzipComposite(ctx: GzipContext, parts: CompositePart[]): Promise<ConversionRecord> {
  // Parts are deflated `workers` at a time, each one member after another, so memory stays near
  // workers × 2 MiB whatever the layer's size.
  const members: CompositePart[] = new Array<CompositePart>(parts.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < parts.length && !failed) {
      const i = next++;
      const part = parts[i]!;
      ctx.signal?.throwIfAborted();
      let member = await cachedGzip(ctx.store, part.digest, ctx.pool.level);
      if (member) ctx.stats.partsReused++;
      else {
        member = await deflateRegular(ctx, part.digest, 1);
        await rememberGzip(ctx.store, part.digest, ctx.pool.level, member);
      }
      members[i] = member;
    }
  };
  // The first failure stops the other workers taking parts (Promise.all would not stop them).
  const guarded = (): Promise<void> =>
    worker().catch((err: unknown) => {
      failed = true;
      throw err;
    });
  await Promise.all(Array.from({ length: Math.min(ctx.workers, Math.max(1, parts.length)) }, guarded));

  // The layer's digest covers the concatenated members; hashing them is a read of the compressed bytes only.
  const hash = createHash("sha256");
  for (const m of members) {
    for await (const chunk of ctx.store.createReadStream(m.digest)) {
      ctx.signal?.throwIfAborted();
      hash.update(chunk as Buffer);
    }
  }
  const digest: Digest = `sha256:${hash.digest("hex")}`;
  const size = members.reduce((n, m) => n + m.size, 0);
  if (members.length === 1) return { digest, size }; // the single member blob is the layer
  await ctx.store.writeComposite(digest, members, ctx.signal ? { signal: ctx.signal } : {});
  return { digest, size };
}

/**
 * Deflates a regular blob into a new regular blob: cut into GZIP_RUN_BYTES runs, each deflated as its own
 * member on the pool, written in order through a verified ingest. `ahead` runs may be deflating at once.
 */
async function deflateRegular(ctx: GzipContext, digest: Digest, ahead: number): Promise<ConversionRecord> {
  ctx.stats.blobsDeflated++;
  const source = ctx.store.createReadStream(digest, { highWaterMark: GZIP_RUN_BYTES });
  const written = await ctx.store.writeStream(deflateRuns(ctx, source, ahead), ctx.signal ? { signal: ctx.signal } : {});
  return { digest: written.digest, size: written.size };
}

async function* deflateRuns(ctx: GzipContext, source: AsyncIterable<Buffer>, ahead: number): AsyncGenerator<Buffer> {
  const inflight: Promise<Buffer>[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let runs = 0;
  const submit = (run: Buffer): void => {
    const p = ctx.pool.compress(run);
    p.catch(() => undefined); // awaited below in order; this only keeps an abandoned run from being "unhandled"
    inflight.push(p);
    runs++;
    ctx.stats.membersDeflated++;
    ctx.stats.bytesIn += run.length;
  };
  for await (const chunk of source) {
    ctx.signal?.throwIfAborted();
    let rest = chunk;
    while (pendingBytes + rest.length >= GZIP_RUN_BYTES) {
      const take = GZIP_RUN_BYTES - pendingBytes;
      pending.push(rest.subarray(0, take));
      submit(pending.length === 1 ? pending[0]! : Buffer.concat(pending, GZIP_RUN_BYTES));
      pending = [];
      pendingBytes = 0;
      rest = rest.subarray(take);
      while (inflight.length > ahead) yield await inflight.shift()!;
    }
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  // An empty blob still needs one (empty) member to be a valid gzip stream.
  if (pendingBytes > 0 || runs === 0) submit(Buffer.concat(pending, pendingBytes));
  while (inflight.length > 0) yield await inflight.shift()!;
}
