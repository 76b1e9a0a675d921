// Composite blobs (a blob made of parts) and blob batches (parts written together, visible only on commit).
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobNotFoundError, BlobStore, CompositeBlobError, DigestMismatchError, type Digest } from "../src/index.js";

const sha = (data: Buffer): Digest => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

let root: string;
let store: BlobStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-composite-"));
  store = await BlobStore.open(join(root, "store"));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function makeComposite(sizes: number[]): Promise<{ whole: Buffer; digest: Digest; parts: { digest: Digest; size: number }[] }> {
  const chunks = sizes.map((n) => randomBytes(n));
  const parts = [];
  for (const c of chunks) parts.push({ digest: (await store.writeBytes(c)).digest, size: c.length });
  const whole = Buffer.concat(chunks);
  const digest = sha(whole);
  await store.writeComposite(digest, parts);
  return { whole, digest, parts };
}

describe("composite blobs", () => {
  it("read like the concatenation of their parts, whole and in ranges across part boundaries", async () => {
    const { whole, digest } = await makeComposite([1000, 3 << 20, 1, 70_000]);
    expect(await store.has(digest)).toBe(true);
    expect((await store.stat(digest))?.size).toBe(whole.length);
    expect(store.filePath(digest)).toBeUndefined();
    expect((await readAll(store.createReadStream(digest))).equals(whole)).toBe(true);
    for (const [start, end] of [[0, 0], [999, 1000], [500, (3 << 20) + 1200], [whole.length - 5, whole.length - 1], [1001, 1001]] as const) {
      expect((await readAll(store.createReadStream(digest, { start, end }))).equals(whole.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
    expect(await store.verify(digest)).toBe(true);
    expect((await store.readBytes(digest)).equals(whole)).toBe(true);
  });

  it("refuse missing parts, wrong sizes, and (with verify) a wrong digest", async () => {
    const a = randomBytes(100);
    const pa = (await store.writeBytes(a)).digest;
    const missing = sha(Buffer.from("nope"));
    await expect(store.writeComposite(sha(Buffer.concat([a, a])), [{ digest: pa, size: 100 }, { digest: missing, size: 4 }])).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.writeComposite(sha(Buffer.concat([a, a, a])), [{ digest: pa, size: 99 }])).rejects.toThrow(/size mismatch/);
    await expect(store.writeComposite(sha(Buffer.from("other")), [{ digest: pa, size: 100 }, { digest: pa, size: 100 }], { verify: true })).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it("fail the read when a part was lost or changed length, and verify() reports tampering", async () => {
    const { digest, parts } = await makeComposite([2000, 3000]);
    await store.delete(parts[1]!.digest);
    await expect(readAll(store.createReadStream(digest))).rejects.toBeInstanceOf(BlobNotFoundError);
    const other = await makeComposite([500, 600]);
    const p = store.path(other.parts[0]!.digest);
    await rm(p, { force: true });
    await writeFile(p, randomBytes(400));
    await expect(readAll(store.createReadStream(other.digest))).rejects.toBeInstanceOf(CompositeBlobError);
  });

  it("delete removes the record, never the parts; writing twice is a no-op", async () => {
    const { digest, parts, whole } = await makeComposite([10, 20]);
    await store.writeComposite(digest, parts);
    const listed = [];
    for await (const c of store.listComposites()) listed.push(c.digest);
    expect(listed).toEqual([digest]);
    await store.delete(digest);
    expect(await store.has(digest)).toBe(false);
    for (const p of parts) expect(await store.has(p.digest)).toBe(true);
    expect(whole.length).toBe(30);
  });
});

describe("cache check and composites", () => {
  it("reports (and with repair removes) a composite whose part is missing or altered", async () => {
    const { checkStore } = await import("../src/index.js");
    const good = await makeComposite([300, 400]);
    const lost = await makeComposite([500, 600]);
    await store.delete(lost.parts[1]!.digest);
    const result = await checkStore(store);
    expect(result.ok).toBe(false);
    const corrupt = result.issues.filter((i) => i.kind === "corrupt-blob").map((i) => (i as { digest: Digest }).digest);
    expect(corrupt).toEqual([lost.digest]);
    await checkStore(store, { repair: true });
    expect(await store.has(lost.digest)).toBe(false);
    expect(await store.has(good.digest)).toBe(true);
    expect((await checkStore(store)).ok).toBe(true);
  });
});

describe("blob batches", () => {
  it("make blobs visible only on commit, and abort leaves nothing", async () => {
    const data = [randomBytes(5000), randomBytes(7000)];
    const batch = store.batch();
    for (const d of data) batch.add(d, sha(d));
    expect(batch.has(sha(data[0]!))).toBe(true);
    expect(await store.has(sha(data[0]!))).toBe(false);
    await batch.commit();
    for (const d of data) expect((await store.readBytes(sha(d))).equals(d)).toBe(true);

    const dropped = store.batch();
    const extra = randomBytes(100);
    dropped.add(extra, sha(extra));
    await dropped.abort();
    expect(await store.has(sha(extra))).toBe(false);
    expect(await readdir(join(root, "store", "ingest"))).toEqual([]);
  });
});
