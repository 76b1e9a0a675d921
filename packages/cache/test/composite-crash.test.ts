// Composite writers in other processes, GC alongside, writers SIGKILLed at random moments: every composite
// a writer recorded keeps all its parts, and afterwards the store checks clean.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, CacheIndex, checkStore, collectGarbage, computeDigest, digestHex, type CompositePart, type Digest } from "../src/index.js";
import { ageFile, cacheIndexTs, exited, killWorkers, spawnWorker, waitForOutput } from "./gc-helpers.js";

const PAIRS = 5;
const HOUR = 3_600_000;

// Like the engine's parts layer writer: starts from a base composite it leases first (then checks it is still
// there), and every round writes one new part through a batch, reuses the last five parts of its previous
// layer (leased by that layer's digest), records the composite, leases it and writes a cache record for it.
const WRITER = `
import { createHash, randomBytes } from "node:crypto";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { BlobStore, CacheIndex, Lease, computeDigest } from ${JSON.stringify(cacheIndexTs)};
const [root, id, base] = process.argv.slice(2);
const sha = (b) => "sha256:" + createHash("sha256").update(b).digest("hex");
const store = await BlobStore.open(root);
const index = await CacheIndex.open(store);
const lease = await Lease.acquire(store);
let prev = [];
await lease.add([base]);
const baseRecord = await store.readComposite(base);
if (baseRecord) for (const p of baseRecord.parts) prev.push({ ...p, bytes: await store.readBytes(p.digest) });
for (let round = 0; ; round++) {
  const fresh = randomBytes(8 * 1024 + round);
  const batch = store.batch();
  batch.add(fresh, sha(fresh));
  await batch.commit();
  await yieldToLoop();
  const parts = [...prev.slice(-5), { digest: sha(fresh), size: fresh.length, bytes: fresh }];
  const digest = sha(Buffer.concat(parts.map((p) => p.bytes)));
  await store.writeComposite(digest, parts.map((p) => ({ digest: p.digest, size: p.size })));
  await lease.add([digest]);
  await index.put({ key: computeDigest(id + "/" + round), parent: null, inputs: { instruction: "COPY round " + round, buildArgs: {} },
    result: { layer: { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: parts.reduce((n, p) => n + p.size, 0), diffID: digest }, created: "x" },
    blobs: [digest] });
  prev = parts;
  if (round === 0) process.stdout.write("tick\\n");
}
`;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-composite-crash-"));
});
afterEach(async () => {
  killWorkers();
  await rm(root, { recursive: true, force: true });
});

describe("composite crash safety", () => {
  it(`keeps every recorded composite whole through ${PAIRS * 2} writer kills with GC running alongside`, { timeout: 180_000 }, async () => {
    const store = await BlobStore.open(root);
    const index = await CacheIndex.open(store);
    // An old base layer of 4 parts, reachable through one record that goes away after the first writers.
    const chunks = [randomBytes(4000), randomBytes(5000), randomBytes(6000), randomBytes(7000)];
    const parts: CompositePart[] = [];
    for (const c of chunks) {
      const { digest } = await store.writeBytes(c);
      await ageFile(store.path(digest), HOUR);
      parts.push({ digest, size: c.length });
    }
    const base: Digest = `sha256:${createHash("sha256").update(Buffer.concat(chunks)).digest("hex")}`;
    await store.writeComposite(base, parts);
    await ageFile(join(root, "composites", "sha256", `${digestHex(base)}.json`), HOUR);
    const baseKey = computeDigest("base record");
    await index.put({ key: baseKey, parent: null, inputs: { instruction: "FROM base", buildArgs: {} }, result: { created: "x" }, blobs: [base] });

    const script = join(root, "..", `${root.split("/").at(-1)}-writer.mts`);
    let collecting = true;
    let gcRuns = 0;
    const gcLoop = (async () => {
      while (collecting) {
        await collectGarbage(store);
        gcRuns++;
        await sleep(30);
      }
    })();
    let stderr = "";
    try {
      for (let i = 0; i < PAIRS; i++) {
        const a = await spawnWorker(script, WRITER, [root, `w${i}a`, base]);
        const b = await spawnWorker(script, WRITER, [root, `w${i}b`, base]);
        for (const c of [a, b]) c.stderr?.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        await Promise.all([waitForOutput(a, "tick"), waitForOutput(b, "tick")]);
        await sleep(Math.floor(Math.random() * 200));
        a.kill("SIGKILL");
        await sleep(Math.floor(Math.random() * 30));
        b.kill("SIGKILL");
        await Promise.all([exited(a), exited(b)]);
        if (i === 0) await index.delete(baseKey);
      }
    } finally {
      collecting = false;
      await gcLoop;
      await rm(script, { force: true });
    }
    // A writer that found a part gone would have died with BlobNotFoundError on stderr.
    expect(stderr).toBe("");
    expect(gcRuns).toBeGreaterThan(0);

    const before = await checkStore(store);
    expect(before.issues).toEqual([]);
    expect(before.records).toBeGreaterThanOrEqual(PAIRS * 2);
    let composites = 0;
    for await (const c of store.listComposites()) {
      composites++;
      expect(await store.verify(c.digest)).toBe(true);
    }
    expect(composites).toBeGreaterThanOrEqual(PAIRS * 2);

    await collectGarbage(store);
    expect(await readdir(join(root, "ingest"))).toEqual([]);
    expect(await readdir(join(root, "leases"))).toEqual([]);
    // The base layer went with its record and the last lease on it; every recorded layer is still whole.
    expect(await store.has(base)).toBe(false);
    const after = await checkStore(store);
    expect(after).toMatchObject({ ok: true, records: before.records });
    for await (const r of index.list()) for (const d of r.blobs) expect(await store.verify(d)).toBe(true);
  });
});
