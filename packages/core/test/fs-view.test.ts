import { describe, it, expect, afterAll } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { writeLayerBlob, whiteoutEntry, opaqueEntry, type LayerEntry } from "@kiln/snapshot";
import { ImageFsView, openStore, type KilnStore } from "@kiln/core";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const dir = (p: string): LayerEntry => ({ path: p, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 });
const file = (p: string, content = "x"): LayerEntry => ({ path: p, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: content.length, open: () => Readable.from([Buffer.from(content)]) });

async function layer(store: KilnStore, entries: LayerEntry[]) {
  const ingest = store.blobs.ingest();
  const info = await writeLayerBlob(entries, ingest);
  const { digest, size } = await ingest.commit();
  return { mediaType: info.mediaType, digest, size, diffID: info.diffID };
}

describe("ImageFsView", () => {
  it("applies whiteouts, opaque dirs and dirs replaced by files across layers", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "kiln-fsview-"));
    dirs.push(root);
    const store = await openStore(root);
    const l1 = await layer(store, [dir("a"), file("a/b"), dir("a/c"), file("a/c/d"), dir("keep"), file("keep/k"), dir("o"), file("o/old"), dir("r"), file("r/inner"), file("x")]);
    const l2 = await layer(store, [dir("a"), whiteoutEntry("a/c"), dir("o"), opaqueEntry("o"), file("o/new"), file("r", "now a file"), whiteoutEntry("x")]);
    const view = await ImageFsView.load(store.blobs, [l1, l2]);
    expect(view.lstat("/a/b")?.type).toBe("file");
    expect(view.lstat("/a/c")).toBeUndefined();
    expect(view.lstat("/a/c/d")).toBeUndefined();
    expect(view.lstat("/o/old")).toBeUndefined();
    expect(view.lstat("/o/new")?.type).toBe("file");
    expect(view.lstat("/o")?.type).toBe("dir");
    expect(view.lstat("/r")?.type).toBe("file");
    expect(view.lstat("/r/inner")).toBeUndefined();
    expect(view.lstat("/x")).toBeUndefined();
    expect(view.lstat("/keep/k")?.type).toBe("file");
    expect((await view.readFile("/r"))?.toString()).toBe("now a file");
  });
});
