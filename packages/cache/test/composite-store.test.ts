// Composite blobs read exactly like regular ones: ranges across part boundaries, failures, concurrency.
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobNotFoundError, BlobStore, CompositeBlobError, DigestMismatchError, type CompositePart, type Digest } from "../src/index.js";

const sha = (data: Buffer): Digest => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let root: string;
let store: BlobStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-composite-store-"));
  store = await BlobStore.open(root);
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function parts(chunks: Buffer[]): Promise<CompositePart[]> {
  const out: CompositePart[] = [];
  for (const c of chunks) out.push({ digest: (await store.writeBytes(c)).digest, size: c.length });
  return out;
}

async function composite(sizes: number[]): Promise<{ whole: Buffer; digest: Digest; parts: CompositePart[] }> {
  const chunks = sizes.map((n) => randomBytes(n));
  const ps = await parts(chunks);
  const whole = Buffer.concat(chunks);
  await store.writeComposite(sha(whole), ps);
  return { whole, digest: sha(whole), parts: ps };
}

/** Composite offsets of every part boundary, and one byte either side. */
function boundaries(sizes: number[]): number[] {
  const out = new Set<number>();
  let off = 0;
  for (const s of sizes) {
    for (const d of [-1, 0, 1]) out.add(off + d);
    off += s;
  }
  for (const d of [-1, 0, 1]) out.add(off + d);
  return [...out].filter((n) => n >= 0);
}

describe("composite blob reads", () => {
  it("serve every range starting and ending at or next to part boundaries, including empty parts", async () => {
    const sizes = [1, 1000, 0, (2 << 20) + 3, 7, 0];
    const { whole, digest } = await composite(sizes);
    const points = boundaries(sizes);
    for (const start of points) {
      for (const end of points) {
        if (end < start || start >= whole.length) continue;
        const got = await readAll(store.createReadStream(digest, { start, end }));
        expect(got.equals(whole.subarray(start, end + 1)), `${start}..${end}`).toBe(true);
      }
    }
    expect((await readAll(store.createReadStream(digest, { start: 5 }))).equals(whole.subarray(5))).toBe(true);
    expect((await readAll(store.createReadStream(digest, { end: 999 }))).equals(whole.subarray(0, 1000))).toBe(true);
    // Past the end is clamped like fs streams; an inverted or out-of-range window is empty.
    expect((await readAll(store.createReadStream(digest, { start: whole.length - 2, end: whole.length + 50 }))).equals(whole.subarray(-2))).toBe(true);
    expect((await readAll(store.createReadStream(digest, { start: 10, end: 9 }))).length).toBe(0);
    expect((await readAll(store.createReadStream(digest, { start: whole.length }))).length).toBe(0);
    // Small reads give the same bytes.
    expect((await readAll(store.createReadStream(digest, { highWaterMark: 1024 }))).equals(whole)).toBe(true);
  });

  it("treat the composite like a regular blob in has, stat, readBytes, readJson and verify", async () => {
    const json = Buffer.from(JSON.stringify({ hello: "composite", n: [1, 2, 3] }));
    const ps = await parts([json.subarray(0, 10), json.subarray(10)]);
    const digest = sha(json);
    expect(await store.writeComposite(digest, ps, { verify: true })).toEqual({ digest, size: json.length });
    expect(await store.has(digest)).toBe(true);
    expect(await store.stat(digest)).toEqual({ size: json.length });
    expect(await store.readJson(digest)).toEqual({ hello: "composite", n: [1, 2, 3] });
    expect(await store.verify(digest)).toBe(true);
    expect(await store.readComposite(digest)).toEqual({ digest, size: json.length, parts: ps });
    expect(await store.readComposite(ps[0]!.digest)).toBeUndefined();
    expect(store.filePath(digest)).toBeUndefined();
    expect(store.filePath(ps[0]!.digest)).toBe(store.path(ps[0]!.digest));
  });

  it("a composite of no parts is the empty blob", async () => {
    const digest = sha(Buffer.alloc(0));
    await store.writeComposite(digest, []);
    expect(await store.stat(digest)).toEqual({ size: 0 });
    expect((await store.readBytes(digest)).length).toBe(0);
    expect(await store.verify(digest)).toBe(true);
  });

  it("throws BlobNotFoundError synchronously for an absent blob, and fails the stream when a part is missing", async () => {
    const absent = sha(Buffer.from("absent"));
    expect(() => store.createReadStream(absent)).toThrow(BlobNotFoundError);
    await expect(store.readBytes(absent)).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.verify(absent)).rejects.toBeInstanceOf(BlobNotFoundError);
    const { digest, parts: ps } = await composite([100, 200, 300]);
    await store.delete(ps[2]!.digest);
    const stream = store.createReadStream(digest);
    const err = await readAll(stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobNotFoundError);
    expect((err as BlobNotFoundError).digest).toBe(ps[2]!.digest);
    // A range that does not touch the missing part still reads.
    expect((await readAll(store.createReadStream(digest, { start: 0, end: 299 }))).length).toBe(300);
  });

  it("detects a part longer than recorded, and verify() reports a same-length tampered part", async () => {
    const longer = await composite([300, 300]);
    const p0 = store.path(longer.parts[0]!.digest);
    await chmod(p0, 0o644);
    await writeFile(p0, Buffer.concat([longer.whole.subarray(0, 300), Buffer.from("x")]));
    await expect(readAll(store.createReadStream(longer.digest))).rejects.toBeInstanceOf(CompositeBlobError);

    const tampered = await composite([400, 500]);
    const p1 = store.path(tampered.parts[1]!.digest);
    await chmod(p1, 0o644);
    await writeFile(p1, randomBytes(500));
    expect(await store.verify(tampered.digest)).toBe(false);
    // verify: true re-hashes the parts, so a new record over the tampered part is refused.
    const claimed = sha(Buffer.concat([tampered.whole, tampered.whole.subarray(0, 400)]));
    await expect(store.writeComposite(claimed, [...tampered.parts, tampered.parts[0]!], { verify: true })).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await store.has(claimed)).toBe(false);
  });

  it("closes its part file when the reader stops early", async () => {
    const { digest } = await composite([3 << 20, 3 << 20]);
    const blobsDir = join(root, "blobs");
    const openBlobFds = async (): Promise<number> => {
      let n = 0;
      for (const fd of await readdir("/proc/self/fd")) {
        const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
        if (target.startsWith(blobsDir)) n++;
      }
      return n;
    };
    const stream = store.createReadStream(digest);
    for await (const chunk of stream) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      break;
    }
    // The close is asynchronous: wait for it (bounded), then there must be none left.
    for (let i = 0; i < 200 && (await openBlobFds()) > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await openBlobFds()).toBe(0);
  });
});

describe("writeComposite", () => {
  it("lets concurrent writers of one digest all succeed, leaving one record and no temp files", async () => {
    const chunks = [randomBytes(5000), randomBytes(6000), randomBytes(7000)];
    const ps = await parts(chunks);
    const digest = sha(Buffer.concat(chunks));
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.writeComposite(digest, ps, { verify: i % 2 === 0 })));
    for (const r of results) expect(r).toEqual({ digest, size: 18_000 });
    expect(await readdir(join(root, "composites", "sha256"))).toEqual([`${digest.slice(7)}.json`]);
    expect(await readdir(join(root, "ingest"))).toEqual([]);
    expect((await store.readBytes(digest)).equals(Buffer.concat(chunks))).toBe(true);
  });

  it("is a no-op when the digest exists as a regular blob, and a regular write after a composite is too", async () => {
    const data = randomBytes(3000);
    const ps = await parts([data.subarray(0, 1000), data.subarray(1000)]);
    const regular = await store.writeBytes(data);
    await store.writeComposite(regular.digest, ps);
    expect(await store.readComposite(regular.digest)).toBeUndefined();
    await store.delete(regular.digest);
    await store.writeComposite(regular.digest, ps);
    await store.writeBytes(data);
    expect(store.filePath(regular.digest)).toBeUndefined();
    expect((await store.readBytes(regular.digest)).equals(data)).toBe(true);
  });

  it("refuses nested composites, missing parts, wrong sizes and an aborted signal", async () => {
    const inner = await composite([10, 20]);
    const other = (await parts([randomBytes(5)]))[0]!;
    const nested = sha(Buffer.concat([inner.whole, randomBytes(1)]));
    await expect(store.writeComposite(nested, [{ digest: inner.digest, size: 30 }, other])).rejects.toBeInstanceOf(CompositeBlobError);
    await expect(store.writeComposite(nested, [other, { digest: sha(Buffer.from("gone")), size: 4 }])).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.writeComposite(nested, [{ digest: other.digest, size: 6 }])).rejects.toThrow(/size mismatch/);
    await expect(store.writeComposite(nested, [{ digest: other.digest, size: -1 }])).rejects.toBeInstanceOf(CompositeBlobError);
    await expect(store.writeComposite(nested, [other], { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
    expect(await store.has(nested)).toBe(false);
    expect(await readdir(join(root, "ingest"))).toEqual([]);
  });
});
