import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, type BlobWriteResult } from "../src/index.js";
import { digestOfContent } from "./fixtures/content.js";
import { collect, killRunningFixtures, runFixture, spawnFixture, waitForLine } from "./fixtures/spawn.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-cache-proc-"));
});
afterEach(async () => {
  killRunningFixtures();
  await rm(root, { recursive: true, force: true });
});

describe("BlobStore across processes", () => {
  it("lets several processes write the same blob at once; all succeed", async () => {
    const size = 16 * 1024 * 1024;
    const expected = await digestOfContent(42, size);
    const startFile = join(root, "go");
    const children = Array.from({ length: 4 }, () => spawnFixture("write-blob.ts", [root, "42", String(size), startFile]));
    const outputs = children.map((c) => collect(c));
    await Promise.all(children.map((c) => waitForLine(c, "ready")));
    await writeFile(startFile, "");
    for (const r of await Promise.all(outputs)) {
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n");
      expect(lines[0]).toBe("ready");
      expect(JSON.parse(lines[1]!) as BlobWriteResult).toEqual({ digest: expected, size });
    }
    const store = await BlobStore.open(root);
    expect(await store.verify(expected)).toBe(true);
    expect(await readdir(join(root, "blobs", "sha256"))).toEqual([expected.slice(7)]);
    expect(await readdir(join(root, "ingest"))).toEqual([]);
    await rm(startFile);
  });

  it("leaves no visible blob when a writer is SIGKILLed mid-ingest, and the next write works", async () => {
    const size = 8 * 1024 * 1024;
    const expected = await digestOfContent(9, size);
    const child = spawnFixture("hang-ingest.ts", [root, "9", String(size)]);
    const done = collect(child);
    await waitForLine(child, "ready");
    child.kill("SIGKILL");
    expect((await done).signal).toBe("SIGKILL");

    const store = await BlobStore.open(root);
    expect(await store.has(expected)).toBe(false);
    expect(await readdir(join(root, "blobs", "sha256"))).toEqual([]);
    const leftovers = await readdir(join(root, "ingest"));
    expect(leftovers).toHaveLength(1); // the half-written temp file, invisible to readers
    expect(leftovers[0]).toMatch(new RegExp(`^${child.pid}\\.`));

    const retry = await runFixture("write-blob.ts", [root, "9", String(size)]);
    expect(retry.code).toBe(0);
    expect(await store.has(expected)).toBe(true);
    expect(await store.verify(expected)).toBe(true);

    expect(await store.cleanupIngest({ removeDeadOwners: true })).toBe(1);
    expect(await readdir(join(root, "ingest"))).toEqual([]);
  });
});
