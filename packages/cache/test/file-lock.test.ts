import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireFileLock, withFileLock } from "../src/index.js";
import { collect, killRunningFixtures, runFixture, spawnFixture, waitForLine } from "./fixtures/spawn.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-cache-lock-"));
});
afterEach(async () => {
  killRunningFixtures();
  await rm(dir, { recursive: true, force: true });
});

describe("file lock", () => {
  it("serialises two processes", async () => {
    const lock = join(dir, "locks", "step.lock");
    const log = join(dir, "log");
    await writeFile(log, "");
    const runs = await Promise.all([
      runFixture("lock-worker.ts", [lock, log, "40", "3"]),
      runFixture("lock-worker.ts", [lock, log, "40", "3"]),
    ]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(12);
    const pids = new Set<string>();
    // every "start P" must be followed directly by "end P": no interleaving inside the critical section
    for (let i = 0; i < lines.length; i += 2) {
      const [kind, pid] = lines[i]!.split(" ");
      expect(kind).toBe("start");
      expect(lines[i + 1]).toBe(`end ${pid}`);
      pids.add(pid!);
    }
    expect(pids.size).toBe(2);
    expect(await readdir(join(dir, "locks"))).toEqual([]);
  });

  it("breaks a lock whose holder was killed", async () => {
    const lock = join(dir, "held.lock");
    const child = spawnFixture("hold-lock.ts", [lock]);
    const done = collect(child);
    await waitForLine(child, "locked");
    expect(JSON.parse(await readFile(lock, "utf8"))).toMatchObject({ pid: child.pid });

    // while the holder lives, we wait (and give up via the signal)
    await expect(acquireFileLock(lock, { signal: AbortSignal.timeout(150) })).rejects.toMatchObject({ name: "TimeoutError" });

    child.kill("SIGKILL");
    await done;
    const result = await withFileLock(lock, async () => JSON.parse(await readFile(lock, "utf8")) as { pid: number });
    expect(result.pid).toBe(process.pid);
    expect(await readdir(dir)).toEqual([]);
  });

  it("lets exactly one of several racing processes break a dead holder's lock", async () => {
    const lock = join(dir, "contended.lock");
    const log = join(dir, "log");
    await writeFile(log, "");
    const holder = spawnFixture("hold-lock.ts", [lock]);
    const done = collect(holder);
    await waitForLine(holder, "locked");
    holder.kill("SIGKILL");
    await done;
    const runs = await Promise.all(Array.from({ length: 3 }, () => runFixture("lock-worker.ts", [lock, log, "20", "2"])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(12);
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]).toMatch(/^start \d+$/);
      expect(lines[i + 1]).toBe(lines[i]!.replace("start", "end"));
    }
    expect((await readdir(dir)).sort()).toEqual(["log"]);
  });

  it("excludes concurrent holders in one process and releases on error", async () => {
    const lock = join(dir, "inproc.lock");
    let inside = 0;
    let maxInside = 0;
    const task = () =>
      withFileLock(lock, async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
      });
    await Promise.all(Array.from({ length: 5 }, task));
    expect(maxInside).toBe(1);
    await expect(withFileLock(lock, () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await readdir(dir)).toEqual([]);
  });

  it("keeps the in-process queue intact when a waiter gives up", async () => {
    const lock = join(dir, "queue.lock");
    const first = await acquireFileLock(lock);
    const ac = new AbortController();
    const quitter = acquireFileLock(lock, { signal: ac.signal });
    const order: string[] = [];
    const patient = acquireFileLock(lock).then((l) => {
      order.push("patient");
      return l;
    });
    ac.abort(new Error("gave up"));
    await expect(quitter).rejects.toThrow("gave up");
    order.push("released");
    await first.release();
    const second = await patient;
    expect(order).toEqual(["released", "patient"]);
    expect(JSON.parse(await readFile(lock, "utf8"))).toMatchObject({ pid: process.pid });
    await second.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("treats old locks as stale when staleMs is given", async () => {
    const lock = join(dir, "old.lock");
    // a live foreign holder (our parent pid is alive) on another host name: only staleMs can break it
    await writeFile(lock, JSON.stringify({ pid: process.ppid, hostname: "elsewhere", token: "t", acquiredAt: "" }));
    await expect(acquireFileLock(lock, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: "TimeoutError" });
    const held = await acquireFileLock(lock, { staleMs: 0 });
    await held.release();
    await held.release();
    expect(await readdir(dir)).toEqual([]);
  });
});
