import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, InvalidDigestError, InvalidTagError, TagStore, computeDigest, tagFileName, type TagDescriptor } from "../src/index.js";
import { runFixture } from "./fixtures/spawn.js";

let root: string;
let tags: TagStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-cache-tags-"));
  tags = await TagStore.open(await BlobStore.open(root));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const desc = (s: string, size = 100): TagDescriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: computeDigest(s),
  size,
});

describe("TagStore", () => {
  it("sets, gets, overwrites, lists and deletes tags", async () => {
    await tags.set("docker.io/library/app:latest", desc("m1"));
    await tags.set("localhost:5000/team/app:v1.2", { ...desc("m2", 7), annotations: { "org.opencontainers.image.ref.name": "v1.2" } });
    expect(await tags.get("docker.io/library/app:latest")).toEqual(desc("m1"));
    await tags.set("docker.io/library/app:latest", desc("m3"));
    expect(await tags.get("docker.io/library/app:latest")).toEqual(desc("m3"));
    expect((await tags.list()).map((t) => [t.name, t.descriptor.digest])).toEqual([
      ["docker.io/library/app:latest", computeDigest("m3")],
      ["localhost:5000/team/app:v1.2", computeDigest("m2")],
    ]);
    expect((await tags.get("localhost:5000/team/app:v1.2"))?.annotations).toEqual({ "org.opencontainers.image.ref.name": "v1.2" });
    expect(await tags.delete("docker.io/library/app:latest")).toBe(true);
    expect(await tags.delete("docker.io/library/app:latest")).toBe(false);
    expect(await tags.get("docker.io/library/app:latest")).toBeUndefined();
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });

  it("stores any string name in a safe, distinct file", async () => {
    const names = ["..", ".", "a/b", "a%2Fb", "ünïcode:tag", "x".repeat(300), "x".repeat(301), "with space", "a~b"];
    for (const [i, n] of names.entries()) await tags.set(n, desc(`d${i}`, i));
    for (const [i, n] of names.entries()) expect(await tags.get(n)).toEqual(desc(`d${i}`, i));
    expect((await tags.list()).map((t) => t.name).sort()).toEqual([...names].sort());
    const files = await readdir(join(root, "tags"));
    expect(files).toHaveLength(names.length);
    for (const f of files) {
      expect(f).toMatch(/^[A-Za-z0-9_.%~-]+$/);
      expect(f.startsWith(".")).toBe(false);
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(255);
    }
    expect(tagFileName("a/b")).toBe("a%2Fb");
    expect(tagFileName("a%2Fb")).toBe("a%252Fb");
  });

  it("validates names and descriptors", async () => {
    await expect(tags.set("", desc("x"))).rejects.toBeInstanceOf(InvalidTagError);
    await expect(tags.set("t", { ...desc("x"), size: -1 })).rejects.toBeInstanceOf(InvalidTagError);
    await expect(tags.set("t", { ...desc("x"), mediaType: "" })).rejects.toBeInstanceOf(InvalidTagError);
    await expect(tags.set("t", { ...desc("x"), digest: "sha256:zz" as TagDescriptor["digest"] })).rejects.toBeInstanceOf(InvalidDigestError);
  });

  it("is safe with concurrent processes writing tags", async () => {
    const runs = await Promise.all(
      Array.from({ length: 3 }, (_, i) => runFixture("set-tags.ts", [root, String(i), "20"])),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const list = await tags.list();
    // each process wrote its own 20 tags plus the shared one 20 times
    expect(list).toHaveLength(3 * 20 + 1);
    const shared = await tags.get("shared:latest");
    expect(shared?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });
});
