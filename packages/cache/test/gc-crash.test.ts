// Crash safety: writers (blobs, records, tags, under a lease) are SIGKILLed at random moments while GC runs
// concurrently; afterwards the store checks clean and GC removes every leftover.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, CacheIndex, TagStore, checkStore, collectGarbage } from "../src/index.js";
import { cacheIndexTs, exited, killWorkers, spawnWorker, waitForOutput } from "./gc-helpers.js";

/** Writers killed in all: two per round. */
const KILLS = 20;

// Writes, forever: a blob streamed in small chunks, then (as a build does) adds it to its lease, a files-index
// JSON, a record for both, and every third round a manifest plus a tag pointing at it.
const WRITER = `
import { randomBytes } from "node:crypto";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { BlobStore, CacheIndex, Lease, TagStore, computeDigest } from ${JSON.stringify(cacheIndexTs)};
const [root, id] = process.argv.slice(2);
const store = await BlobStore.open(root);
const index = await CacheIndex.open(store);
const tags = await TagStore.open(store);
const lease = await Lease.acquire(store);
async function* chunks(n) {
  for (let i = 0; i < n; i++) {
    await yieldToLoop();
    yield randomBytes(16 * 1024);
  }
}
for (let round = 0; ; round++) {
  const layer = await store.writeStream(chunks(1 + (round % 24)));
  await lease.add([layer.digest]);
  const files = await store.writeJson({ ["/f" + round]: layer.digest });
  await lease.add([files.digest]);
  const key = computeDigest(id + "/" + round);
  await index.put({ key, parent: null, inputs: { instruction: "RUN round " + round, buildArgs: {}, filesIndex: files.digest },
    result: { layer: { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layer.digest, size: layer.size, diffID: layer.digest }, created: "x" },
    blobs: [layer.digest] });
  if (round % 3 === 0) {
    const manifest = await store.writeJson({ schemaVersion: 2, config: { digest: files.digest, size: files.size, mediaType: "x" }, layers: [{ digest: layer.digest, size: layer.size, mediaType: "x" }] });
    await lease.add([manifest.digest]);
    await tags.set("example.com/crash/" + id + ":latest", { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: manifest.digest, size: manifest.size });
  }
  if (round === 0) process.stdout.write("tick\\n");
}
`;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-gc-crash-"));
});
afterEach(async () => {
  killWorkers();
  await rm(root, { recursive: true, force: true });
});

describe("crash safety", () => {
  it(`survives ${KILLS} SIGKILLs of writers at random moments with GC running alongside`, { timeout: 180_000 }, async () => {
    const store = await BlobStore.open(root);
    const script = join(root, "..", `${root.split("/").at(-1)}-writer.mts`);
    let collecting = true;
    let gcRuns = 0;
    const gcLoop = (async () => {
      while (collecting) {
        await collectGarbage(store);
        gcRuns++;
        await sleep(50);
      }
    })();
    try {
      for (let i = 0; i < KILLS / 2; i++) {
        // Two writers at a time, so one is often mid-write while the other dies.
        const a = await spawnWorker(script, WRITER, [root, `w${i}a`]);
        const b = await spawnWorker(script, WRITER, [root, `w${i}b`]);
        await Promise.all([waitForOutput(a, "tick"), waitForOutput(b, "tick")]);
        await sleep(Math.floor(Math.random() * 150));
        a.kill("SIGKILL");
        await sleep(Math.floor(Math.random() * 20));
        b.kill("SIGKILL");
        await Promise.all([exited(a), exited(b)]);
      }
    } finally {
      collecting = false;
      await gcLoop;
      await rm(script, { force: true });
    }
    expect(gcRuns).toBeGreaterThan(0);

    // Nothing half-written is visible: every blob matches its digest, every record's and tag's blobs exist.
    const before = await checkStore(store);
    expect(before.issues).toEqual([]);
    expect(before.records).toBeGreaterThanOrEqual(KILLS); // each writer committed a record before its kill

    const gc = await collectGarbage(store);
    expect(await readdir(join(root, "ingest"))).toEqual([]);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    expect(await readdir(join(root, "leases"))).toEqual([]);
    expect(gc.removedLeases).toBeLessThanOrEqual(2); // only the last writers' leases can still be there

    const after = await checkStore(store);
    expect(after).toMatchObject({ ok: true, records: before.records });
    // Every record still resolves, with its layer and files index present.
    const index = await CacheIndex.open(store);
    for await (const r of index.list()) {
      for (const d of r.blobs) expect(await store.has(d)).toBe(true);
      expect(await store.has(r.inputs.filesIndex as `sha256:${string}`)).toBe(true);
    }
    for (const t of await (await TagStore.open(store)).list()) expect(await store.has(t.descriptor.digest)).toBe(true);
  });
});
