import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, BuildHistory, CacheIndex, InvalidDigestError, computeDigest, type CacheRecord, type Digest } from "../src/index.js";

let root: string;
let store: BlobStore;
let index: CacheIndex;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-cache-index-"));
  store = await BlobStore.open(root);
  index = await CacheIndex.open(store);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const key = (s: string): Digest => computeDigest(`key:${s}`);
const rec = (k: string, parent: string | null, result: unknown = { k }) => ({
  key: key(k),
  parent: parent === null ? null : key(parent),
  inputs: { instruction: `RUN ${k}`, buildArgs: { A: "1" } },
  result,
  blobs: [computeDigest(`blob:${k}`)],
});
const all = async (): Promise<CacheRecord[]> => {
  const out: CacheRecord[] = [];
  for await (const r of index.list()) out.push(r);
  return out;
};

describe("CacheIndex", () => {
  it("puts and gets records with timestamps", async () => {
    const stored = await index.put(rec("a", null, { layer: "x" }));
    expect(stored.createdAt).toBe(stored.lastUsedAt);
    expect(Number.isNaN(Date.parse(stored.createdAt))).toBe(false);
    const got = await index.get<{ layer: string }>(key("a"));
    expect(got).toEqual(stored);
    expect(got?.result.layer).toBe("x");
    expect(await index.get(key("missing"))).toBeUndefined();
    const hex = key("a").slice(7);
    expect(await readdir(join(root, "index", "records", hex.slice(0, 2)))).toEqual([`${hex}.json`]);
  });

  it("touch bumps lastUsedAt but not createdAt; re-put keeps createdAt", async () => {
    const first = await index.put(rec("a", null));
    await sleep(15);
    await index.touch(key("a"));
    const touched = await index.get(key("a"));
    expect(touched?.createdAt).toBe(first.createdAt);
    expect(touched!.lastUsedAt > first.lastUsedAt).toBe(true);
    await index.touch(key("gone")); // no record: ignored
    await sleep(15);
    const again = await index.put(rec("a", null, { v: 2 }));
    expect(again.createdAt).toBe(first.createdAt);
    expect(again.lastUsedAt > touched!.lastUsedAt).toBe(true);
    expect((await index.get(key("a")))?.result).toEqual({ v: 2 });
  });

  it("lists children per parent, including the base (null) level", async () => {
    await index.put(rec("base1", null));
    await index.put(rec("base2", null));
    await index.put(rec("step1", "base1"));
    await index.put(rec("step1b", "base1"));
    await index.put(rec("step2", "step1"));
    const keys = async (p: string | null) => (await index.children(p === null ? null : key(p))).map((r) => r.key).sort();
    expect(await keys(null)).toEqual([key("base1"), key("base2")].sort());
    expect(await keys("base1")).toEqual([key("step1"), key("step1b")].sort());
    expect(await keys("step1")).toEqual([key("step2")]);
    expect(await keys("step2")).toEqual([]);
    expect((await all()).map((r) => r.key).sort()).toEqual(["base1", "base2", "step1", "step1b", "step2"].map(key).sort());
  });

  it("moves a record between parents when re-put with a different parent", async () => {
    await index.put(rec("x", "p1"));
    await index.put(rec("x", "p2"));
    expect(await index.children(key("p1"))).toEqual([]);
    expect((await index.children(key("p2"))).map((r) => r.key)).toEqual([key("x")]);
  });

  it("deletes records and their child markers", async () => {
    await index.put(rec("base", null));
    await index.put(rec("child", "base"));
    await index.delete(key("child"));
    await index.delete(key("child")); // idempotent
    expect(await index.get(key("child"))).toBeUndefined();
    expect(await index.children(key("base"))).toEqual([]);
    expect(await readdir(join(root, "index", "children", key("base").slice(7)))).toEqual([]);
    expect((await all()).map((r) => r.key)).toEqual([key("base")]);
  });

  it("treats corrupt files as misses and prunes dangling markers", async () => {
    await index.put(rec("ok", null));
    await index.put(rec("bad", null));
    const hex = key("bad").slice(7);
    await writeFile(join(root, "index", "records", hex.slice(0, 2), `${hex}.json`), "{not json");
    expect(await index.get(key("bad"))).toBeUndefined();
    expect((await all()).map((r) => r.key)).toEqual([key("ok")]);
    // a marker left by a crash between marker and record write
    await writeFile(join(root, "index", "children", "root", key("ghost").slice(7)), "");
    expect((await index.children(null)).map((r) => r.key)).toEqual([key("ok")]);
    expect(await readdir(join(root, "index", "children", "root"))).not.toContain(key("ghost").slice(7));
  });

  it("validates digests", async () => {
    await expect(index.put({ ...rec("a", null), key: "sha256:nope" as Digest })).rejects.toBeInstanceOf(InvalidDigestError);
    await expect(index.put({ ...rec("a", null), blobs: ["md5:x" as Digest] })).rejects.toBeInstanceOf(InvalidDigestError);
    await expect(index.get("bogus" as Digest)).rejects.toBeInstanceOf(InvalidDigestError);
  });

  it("survives concurrent puts of the same key and of siblings", async () => {
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => index.put(rec("same", "p", { i }))),
      ...Array.from({ length: 10 }, (_, i) => index.put(rec(`sib${i}`, "p"))),
    ]);
    const kids = await index.children(key("p"));
    expect(kids).toHaveLength(11);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });
});

describe("BuildHistory", () => {
  const steps = (...names: string[]) => names.map((n) => ({ key: key(n), description: `RUN ${n}` }));

  it("records builds per identity, newest first, bounded by keep", async () => {
    const history = await BuildHistory.open(store, { keep: 2 });
    expect(await history.latest("ctx:/app|Dockerfile|")).toBeUndefined();
    await history.record("ctx:/app|Dockerfile|", steps("a", "b"));
    await history.record("ctx:/other|Dockerfile|", steps("z"));
    await history.record("ctx:/app|Dockerfile|", steps("a", "c"));
    await history.record("ctx:/app|Dockerfile|", steps("a", "d", "e"));
    const latest = await history.latest("ctx:/app|Dockerfile|");
    expect(latest?.steps).toEqual(steps("a", "d", "e"));
    expect((await history.builds("ctx:/app|Dockerfile|")).map((b) => b.steps.length)).toEqual([3, 2]);
    expect((await history.latest("ctx:/other|Dockerfile|"))?.steps).toEqual(steps("z"));
    // a reopened history sees the same data
    expect((await (await BuildHistory.open(store)).latest("ctx:/app|Dockerfile|"))?.steps).toEqual(steps("a", "d", "e"));
  });

  it("keeps every concurrent record (serialised by a file lock)", async () => {
    const history = await BuildHistory.open(store, { keep: 50 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => history.record("id", steps(`s${i}`))));
    const builds = await history.builds("id");
    expect(builds).toHaveLength(8);
    expect(new Set(builds.map((b) => b.steps[0]!.key)).size).toBe(8);
  });

  it("rejects invalid step keys and bad options", async () => {
    const history = await BuildHistory.open(store);
    await expect(history.record("id", [{ key: "sha256:x" as Digest, description: "" }])).rejects.toBeInstanceOf(InvalidDigestError);
    await expect(BuildHistory.open(store, { keep: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});
