import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, InvalidDigestError, Lease, withStepLock, LeaseReleasedError, collectGarbage, computeDigest, readLeases, type Digest } from "../src/index.js";
import { ageFile, cacheIndexTs, deadPid, exited, killWorkers, spawnWorker, waitForOutput } from "./gc-helpers.js";

let root: string;
let store: BlobStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-lease-"));
  store = await BlobStore.open(root);
});
afterEach(async () => {
  killWorkers();
  await rm(root, { recursive: true, force: true });
});

async function oldBlob(text: string): Promise<Digest> {
  const { digest } = await store.writeBytes(text);
  await ageFile(store.path(digest), 3_600_000);
  return digest;
}

const HOLDER = `
import { BlobStore, Lease } from ${JSON.stringify(cacheIndexTs)};
const [root, digest] = process.argv.slice(2);
const store = await BlobStore.open(root);
const lease = await Lease.acquire(store);
await lease.add([digest]);
process.stdout.write("leased\\n");
setInterval(() => {}, 1000);
`;

describe("withStepLock", () => {
  it("runs builders of one step key one at a time; other keys are not held up", async () => {
    const key = computeDigest("step");
    const order: string[] = [];
    let release!: () => void;
    let started!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const firstStarted = new Promise<void>((r) => (started = r));
    const first = withStepLock(store, key, async () => {
      order.push("first:start");
      started();
      await gate;
      order.push("first:end");
    });
    const second = withStepLock(store, key, async () => {
      order.push("second");
    });
    await firstStarted;
    await withStepLock(store, computeDigest("other step"), async () => {
      order.push("other");
    });
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(["first:start", "other", "first:end", "second"]);
    expect(await readdir(join(root, "locks"))).toEqual([]);
  });
});

describe("Lease", () => {
  it("is a file under leases/ named <pid>-<rand>.json, rewritten on add and removed on release", async () => {
    const lease = await Lease.acquire(store);
    expect(lease.path).toMatch(new RegExp(`/leases/${process.pid}-[0-9a-f]+\\.json$`));
    const a = computeDigest("a");
    const b = computeDigest("b");
    await Promise.all([lease.add([a]), lease.add([b, a])]);
    const file = JSON.parse(await readFile(lease.path, "utf8")) as { pid: number; digests: string[] };
    expect(file.pid).toBe(process.pid);
    expect(file.digests.sort()).toEqual([a, b].sort());
    const infos = await readLeases(store);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ pid: process.pid, alive: true });
    await lease.release();
    await lease.release();
    expect(await readdir(join(root, "leases"))).toEqual([]);
    await expect(lease.add([a])).rejects.toThrow(LeaseReleasedError);
    const other = await Lease.acquire(store);
    await expect(other.add(["not-a-digest"])).rejects.toThrow(InvalidDigestError);
    await other.release();
  });

  it("protects blobs while its holder process lives; GC removes the lease and the blob once it is killed", async () => {
    const leased = await oldBlob("leased by a child");
    const child = await spawnWorker(join(root, "holder.mts"), HOLDER, [root, leased]);
    await waitForOutput(child, "leased");

    let gc = await collectGarbage(store);
    expect(gc.removedBlobs).toEqual([]);
    expect(await store.has(leased)).toBe(true);

    child.kill("SIGKILL");
    await exited(child);
    gc = await collectGarbage(store);
    expect(gc.removedLeases).toBe(1);
    expect(gc.removedBlobs).toEqual([leased]);
    expect(await readdir(join(root, "leases"))).toEqual([]);
  });

  it("treats a lease whose pid is dead, or reused by another process, as dead", async () => {
    const a = await oldBlob("a");
    const b = await oldBlob("b");
    const now = new Date().toISOString();
    const write = (name: string, pid: number, digest: Digest, startTime?: string) =>
      writeFile(join(root, "leases", `${name}.json`), JSON.stringify({ version: 1, pid, hostname: hostname(), ...(startTime ? { startTime } : {}), createdAt: now, updatedAt: now, digests: [digest] }));
    await (await Lease.acquire(store)).release(); // creates leases/
    await write("dead", await deadPid(), a);
    // Our own pid, but "started" at another time: the pid was recycled.
    await write("reused", process.pid, b, "1");
    const infos = await readLeases(store);
    expect(infos.map((l) => [l.id, l.alive]).sort()).toEqual([["dead", false], ["reused", false]]);
    const gc = await collectGarbage(store);
    expect(gc.removedLeases).toBe(2);
    expect(new Set(gc.removedBlobs)).toEqual(new Set([a, b]));
  });
});
