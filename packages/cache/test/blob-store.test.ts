import { createHash } from "node:crypto";
import { chmod, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BlobNotFoundError,
  BlobStore,
  DigestMismatchError,
  IngestStateError,
  InvalidDigestError,
  InvalidStoreNameError,
  SizeMismatchError,
  computeDigest,
  defaultStoreRoot,
  isDigest,
  parseDigest,
  type Digest,
} from "../src/index.js";
import { generateContent } from "./fixtures/content.js";

const sha = (data: string | Buffer): Digest => `sha256:${createHash("sha256").update(data).digest("hex")}`;

let root: string;
let store: BlobStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-cache-"));
  store = await BlobStore.open(join(root, "store"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const ingestEntries = () => readdir(join(store.root, "ingest"));
const blobEntries = () => readdir(join(store.root, "blobs", "sha256"));

describe("digests", () => {
  it("accepts only sha256 with 64 lowercase hex digits", () => {
    const good = sha("x");
    expect(isDigest(good)).toBe(true);
    expect(parseDigest(good)).toBe(good);
    for (const bad of [good.toUpperCase(), `sha256:${"A".repeat(64)}`, `sha512:${"a".repeat(64)}`, `sha256:${"a".repeat(63)}`, `${good}\n`, 42, null]) {
      expect(isDigest(bad)).toBe(false);
      expect(() => parseDigest(bad)).toThrow(InvalidDigestError);
    }
    expect(computeDigest("hello")).toBe(sha("hello"));
  });

  it("rejects malformed digests before touching the filesystem", () => {
    expect(() => store.path("sha256:../../etc/passwd" as Digest)).toThrow(InvalidDigestError);
  });
});

describe("store root", () => {
  it("prefers KILN_STORE, then an absolute XDG_CACHE_HOME, then ~/.cache", () => {
    expect(defaultStoreRoot({ KILN_STORE: "/srv/kiln", XDG_CACHE_HOME: "/x" })).toBe("/srv/kiln");
    expect(defaultStoreRoot({ XDG_CACHE_HOME: "/x" })).toBe("/x/kiln");
    expect(defaultStoreRoot({ XDG_CACHE_HOME: "relative" })).toMatch(/\/\.cache\/kiln$/);
    expect(defaultStoreRoot({ KILN_STORE: "" })).toMatch(/\/\.cache\/kiln$/);
  });

  it("creates the layout and hands out extra directories", async () => {
    for (const d of ["blobs/sha256", "ingest", "index", "tags", "tmp"]) {
      expect((await stat(join(store.root, d))).isDirectory()).toBe(true);
    }
    expect(store.dir("layers")).toBe(join(store.root, "layers"));
    expect((await stat(await store.ensureDir("layers"))).isDirectory()).toBe(true);
    for (const bad of ["", "..", "a/b"]) expect(() => store.dir(bad)).toThrow(InvalidStoreNameError);
  });
});

describe("BlobStore", () => {
  it("writes, reads, stats and lists bytes", async () => {
    const res = await store.writeBytes("hello world");
    expect(res).toEqual({ digest: sha("hello world"), size: 11 });
    expect(await store.has(res.digest)).toBe(true);
    expect(await store.stat(res.digest)).toEqual({ size: 11 });
    expect((await store.readBytes(res.digest)).toString()).toBe("hello world");
    expect(store.path(res.digest)).toBe(join(store.root, "blobs", "sha256", res.digest.slice(7)));
    const listed = [];
    for await (const b of store.list()) listed.push(b);
    expect(listed.map((b) => [b.digest, b.size])).toEqual([[res.digest, 11]]);
    expect(await ingestEntries()).toEqual([]);
  });

  it("is idempotent for existing content and reports missing blobs with a typed error", async () => {
    const a = await store.writeBytes(Buffer.from([1, 2, 3]));
    const b = await store.writeBytes(Buffer.from([1, 2, 3]), a.digest);
    expect(b).toEqual(a);
    const missing = sha("missing");
    expect(await store.has(missing)).toBe(false);
    expect(await store.stat(missing)).toBeUndefined();
    await expect(store.readBytes(missing)).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(() => store.createReadStream(missing)).toThrow(BlobNotFoundError);
    await expect(store.verify(missing)).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it("writes canonical JSON and reads it back", async () => {
    const value = { b: 1, a: [1, "two", { c: null }] };
    const res = await store.writeJson(value);
    expect(res.bytes.toString()).toBe(JSON.stringify(value));
    expect(res.digest).toBe(sha(JSON.stringify(value)));
    expect(await store.readJson(res.digest)).toEqual(value);
  });

  it("streams byte ranges", async () => {
    const { digest } = await store.writeBytes("0123456789");
    const read = async (opts?: { start?: number; end?: number }) => {
      let s = "";
      for await (const c of store.createReadStream(digest, opts)) s += String(c);
      return s;
    };
    expect(await read()).toBe("0123456789");
    expect(await read({ start: 3, end: 6 })).toBe("3456");
    expect(await read({ start: 8 })).toBe("89");
  });

  it("rejects a digest mismatch and leaves nothing behind", async () => {
    const wrong = sha("something else");
    await expect(store.writeBytes("payload", wrong)).rejects.toMatchObject({ expected: wrong, actual: sha("payload") });
    await expect(store.writeStream(Readable.from([Buffer.from("pay"), Buffer.from("load")]), { expected: wrong })).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    expect(await store.has(wrong)).toBe(false);
    expect(await store.has(sha("payload"))).toBe(false);
    expect(await blobEntries()).toEqual([]);
    expect(await ingestEntries()).toEqual([]);
  });

  it("rejects too little and too much data against expectedSize", async () => {
    const short = store.writeStream(Readable.from([Buffer.from("abc")]), { expectedSize: 4 });
    await expect(short).rejects.toMatchObject({ name: "SizeMismatchError", expected: 4, actual: 3 });
    const long = store.writeStream(generateContent(1, 1024 * 1024, 1024), { expectedSize: 10_000 });
    await expect(long).rejects.toBeInstanceOf(SizeMismatchError);
    const exact = await store.writeStream(Readable.from([Buffer.from("abcd")]), { expectedSize: 4, expected: sha("abcd") });
    expect(exact).toEqual({ digest: sha("abcd"), size: 4 });
    expect(await blobEntries()).toEqual([sha("abcd").slice(7)]);
    expect(await ingestEntries()).toEqual([]);
  });

  it("ingests via pipe and commit, and aborts cleanly", async () => {
    const ing = store.ingest({ expected: sha("piped data") });
    await pipeline(Readable.from([Buffer.from("piped "), Buffer.from("data")]), ing);
    expect(await store.has(sha("piped data"))).toBe(false); // not visible before commit
    expect(await ingestEntries()).toHaveLength(1);
    expect(await ing.commit()).toEqual({ digest: sha("piped data"), size: 10 });
    expect(await ingestEntries()).toEqual([]);
    await expect(ing.commit()).rejects.toBeInstanceOf(IngestStateError);

    const aborted = store.ingest();
    aborted.write("partial");
    await aborted.abort();
    await aborted.abort(); // idempotent
    await expect(aborted.commit()).rejects.toBeInstanceOf(IngestStateError);
    expect(await ingestEntries()).toEqual([]);
    expect(await store.has(sha("partial"))).toBe(false);

    const immediate = store.ingest();
    await immediate.abort(); // before the temp file was even opened
    expect(await ingestEntries()).toEqual([]);
  });

  it("honours an AbortSignal mid-stream", async () => {
    const ac = new AbortController();
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from("first");
      ac.abort();
      yield Buffer.from("second");
    }
    await expect(store.writeStream(source(), { signal: ac.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(await ingestEntries()).toEqual([]);
    expect(await blobEntries()).toEqual([]);
  });

  it("commits the same content from concurrent ingests in one process", async () => {
    const results = await Promise.all(
      Array.from({ length: 5 }, () => store.writeStream(generateContent(7, 300_000, 4096))),
    );
    expect(new Set(results.map((r) => r.digest)).size).toBe(1);
    expect(await blobEntries()).toHaveLength(1);
    expect(await ingestEntries()).toEqual([]);
    expect(await store.verify(results[0]!.digest)).toBe(true);
  });

  it("detects corruption on verify and deletes blobs", async () => {
    const { digest } = await store.writeBytes("trustworthy");
    expect(await store.verify(digest)).toBe(true);
    await chmod(store.path(digest), 0o644);
    await writeFile(store.path(digest), "tampered");
    expect(await store.verify(digest)).toBe(false);
    await store.delete(digest);
    await store.delete(digest); // missing is fine
    expect(await store.has(digest)).toBe(false);
  });

  it("cleans up stale ingest files by age or dead owner, but not live ones", async () => {
    const live = store.ingest();
    live.write("in progress");
    await new Promise((r) => setImmediate(r));
    const oldFile = join(store.root, "ingest", "999999.0123456789abcdef.ingest");
    const deadFile = join(store.root, "ingest", "999998.0123456789abcdef.ingest");
    await writeFile(oldFile, "x");
    await writeFile(deadFile, "y");
    const past = new Date(Date.now() - 48 * 3600_000);
    await utimes(oldFile, past, past);
    expect(await store.cleanupIngest()).toBe(1); // only the 48h-old one
    expect((await ingestEntries()).sort()).toHaveLength(2);
    expect(await store.cleanupIngest({ removeDeadOwners: true })).toBe(1); // pid 999998 is not running
    expect(await ingestEntries()).toHaveLength(1);
    expect(await live.commit()).toEqual({ digest: sha("in progress"), size: 11 });
    expect(await ingestEntries()).toEqual([]);
  });
});
